using System.Text;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Layers.Index;

namespace LayerTool.Docker.Overlay2;

/// <summary>The layer directories do not look like what the fast path knows; the caller falls back to the API.</summary>
public sealed class UnexpectedLayoutException : Exception
{
    public UnexpectedLayoutException(string message) : base(message) { }

    public UnexpectedLayoutException(string message, Exception inner) : base(message, inner) { }

    public UnexpectedLayoutException() { }
}

/// <summary>
/// The final image's flattened filesystem, in walk order, as <see cref="LayerDiff"/> reads it from an
/// export, but computed from the overlay2 layer directories: every path that a layer above the base
/// touches takes its state from the topmost such layer (overlay semantics: char device 0:0 = whiteout,
/// <c>trusted.overlay.opaque=y</c> = opaque directory, a non-directory hides everything below); every
/// other path is the base's, taken from the base index with its known content hash
/// (<see cref="IContentHashHint"/>), so untouched base files are never read. Hard-link groups: paths
/// of one layer directory sharing an inode; base groups as the base index records them; the first path
/// of a group in walk order carries the file, the next ones are links to it, as export writes them.
/// </summary>
internal sealed class Overlay2FinalSource : ILayerEntrySource, IContentHashHint, IDisposable
{
    private readonly IReadOnlyList<byte[]> _baseDirs;
    private readonly OwnerNames _owners;
    private readonly IEnumerator<FsIndexEntry> _base;
    private readonly IEnumerator<UpperEvent> _upper;
    private readonly Dictionary<(int Layer, long Inode), LayerPath> _upperGroups = [];
    private readonly Dictionary<LayerPath, LayerPath> _baseGroups = [];
    private readonly List<LayerPath> _hidden = [];
    private FsIndexEntry? _nextBase;
    private UpperEvent? _nextUpper;
    private LazyFile? _content;
    /// <summary>The token of the walk: the current file's reads observe it (a reader hashing a large file passes none).</summary>
    private CancellationToken _walk;

    /// <param name="baseIndex">The base's filesystem.</param>
    /// <param name="upperDirs">The diff directories of the layers above the base, top first.</param>
    /// <param name="baseDirs">The base's diff directories, top first (to re-read a base file in the rare
    /// case <see cref="LayerDiff"/> must write one, e.g. a hard-link group that changed).</param>
    /// <param name="owners">Owner names as the engine's tar writer puts them.</param>
    public Overlay2FinalSource(FsIndex baseIndex, IReadOnlyList<string> upperDirs, IReadOnlyList<string> baseDirs, OwnerNames owners)
    {
        ArgumentNullException.ThrowIfNull(baseIndex);
        _baseDirs = [.. baseDirs.Select(d => Encoding.UTF8.GetBytes(d))];
        _owners = owners;
        _base = baseIndex.Entries.GetEnumerator();
        var contributors = upperDirs.Select((d, i) => new Contributor(i, Encoding.UTF8.GetBytes(d))).ToList();
        _upper = WalkUpper(LayerPath.Root, contributors, reachesBase: true).GetEnumerator();
        _nextBase = _base.MoveNext() ? _base.Current : null;
        _nextUpper = _upper.MoveNext() ? _upper.Current : null;
    }

    /// <summary>Bytes of upper-layer files read so far (for progress and the bench).</summary>
    public long BytesRead { get; private set; }

    public Stream Content => _content ?? (Stream)Stream.Null;

    public byte[]? CurrentContentHash { get; private set; }

    public ValueTask<LayerEntry?> ReadNextAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        _walk = cancellationToken;
        _content?.Dispose();
        _content = null;
        CurrentContentHash = null;
        while (true)
        {
            if (_nextBase is null && _nextUpper is null) return ValueTask.FromResult<LayerEntry?>(null);
            var order = _nextBase is null ? 1 : _nextUpper is null ? -1 : _nextBase.Path.CompareTo(_nextUpper.Path);
            if (order < 0)
            {
                var b = _nextBase!;
                _nextBase = _base.MoveNext() ? _base.Current : null;
                if (IsHidden(b.Path)) continue;
                return ValueTask.FromResult<LayerEntry?>(FromBase(b));
            }
            var u = _nextUpper!;
            _nextUpper = _upper.MoveNext() ? _upper.Current : null;
            if (order == 0) _nextBase = _base.MoveNext() ? _base.Current : null; // the upper layer's state wins
            if (u.HidesBaseBelow) Hide(u.Path);
            if (u.Entry is null) continue; // a whiteout
            return ValueTask.FromResult<LayerEntry?>(FromUpper(u));
        }
    }

    public void Dispose()
    {
        _content?.Dispose();
        _base.Dispose();
        _upper.Dispose();
    }

    private bool IsHidden(LayerPath path)
    {
        while (_hidden.Count > 0 && !_hidden[^1].IsAncestorOf(path)) _hidden.RemoveAt(_hidden.Count - 1);
        return _hidden.Count > 0;
    }

    private void Hide(LayerPath path)
    {
        while (_hidden.Count > 0 && !_hidden[^1].IsAncestorOf(path)) _hidden.RemoveAt(_hidden.Count - 1);
        _hidden.Add(path);
    }

    private LayerEntry FromBase(FsIndexEntry b)
    {
        var entry = b.Entry;
        if (entry.Type != LayerEntryType.Directory && b.InHardLinkGroup)
        {
            // The group's first surviving path carries the file (upper layers may have replaced earlier ones).
            var group = b.HardLinkOf ?? b.Path;
            if (b.HardLinkOf is not null && _baseGroups.TryGetValue(group, out var first))
                return entry.AsHardLinkTo(first);
            _baseGroups.TryAdd(group, b.Path);
        }
        if (entry.Type == LayerEntryType.RegularFile)
        {
            CurrentContentHash = b.ContentHash;
            var path = b.Path;
            _content = new LazyFile(() => NativeFs.OpenRead(FindInBase(path)), entry.Size, this, countRead: false, _walk);
        }
        return entry;
    }

    private byte[] FindInBase(LayerPath path)
    {
        foreach (var dir in _baseDirs)
        {
            var z = NativeFs.Z([.. dir, (byte)'/', .. path.Bytes]);
            if (NativeFs.Lstat(z) is { IsRegular: true }) return z;
        }
        throw new IOException($"'{path}' of the base is not in the base's layer directories");
    }

    private LayerEntry FromUpper(UpperEvent u)
    {
        var s = u.Stat;
        var entry = u.Entry!;
        if (!s.IsDirectory && s.Nlink > 1)
        {
            if (_upperGroups.TryGetValue((u.Layer, s.Inode), out var first))
                return entry.AsHardLinkTo(first);
            _upperGroups[(u.Layer, s.Inode)] = u.Path;
        }
        if (entry.Type == LayerEntryType.RegularFile)
        {
            var disk = u.DiskPath;
            _content = new LazyFile(() => NativeFs.OpenRead(disk), entry.Size, this, countRead: true, _walk);
        }
        return entry;
    }

    private sealed record Contributor(int Layer, byte[] Dir);

    private sealed record UpperEvent(LayerPath Path, LayerEntry? Entry, int Layer, byte[] DiskPath, NativeStat Stat, bool HidesBaseBelow);

    /// <summary>The merged view of the upper layers under <paramref name="dir"/>: one event per child name
    /// (topmost layer wins), in walk order, recursively.</summary>
    private IEnumerable<UpperEvent> WalkUpper(LayerPath dir, List<Contributor> contributors, bool reachesBase)
    {
        // Each name with the contributors that list it, top first: only those are looked at below (probing
        // every layer for every name cost a failed statx per layer and path, half of all the walk's calls).
        var names = new SortedDictionary<byte[], List<int>>(ByteOrder.Instance);
        for (var i = 0; i < contributors.Count; i++)
        {
            foreach (var name in NativeFs.ReadDirectory(NativeFs.Z(Join(contributors[i].Dir, dir))))
            {
                if (!names.TryGetValue(name, out var listed)) names[name] = listed = [];
                listed.Add(i);
            }
        }
        foreach (var (name, listed) in names)
        {
            var path = dir.Append(name);
            if (name.AsSpan().StartsWith(".wh."u8))
                throw new UnexpectedLayoutException($"'{path}' in a layer directory is named like a tar whiteout (overlay2 stores whiteouts as devices)");
            var top = listed[0];
            var disk = NativeFs.Z(Join(contributors[top].Dir, path));
            var stat = NativeFs.Lstat(disk)
                ?? throw new UnexpectedLayoutException($"'{path}' disappeared from the layer directories while they were read");
            var layer = contributors[top].Layer;
            if (IsWhiteout(stat))
            {
                yield return new UpperEvent(path, null, layer, disk, stat, HidesBaseBelow: true);
                continue;
            }
            if (stat.IsSocket) throw new UnexpectedLayoutException($"'{path}' is a socket, which a layer tar cannot hold");
            var xattrs = NativeFs.Xattrs(disk);
            if (!stat.IsDirectory)
            {
                yield return new UpperEvent(path, MakeEntry(path, stat, disk, xattrs), layer, disk, stat, HidesBaseBelow: true);
                continue;
            }

            // A directory merges with the same directory in the layers below it, down to an opaque one
            // or to a layer where the path is not a directory (or is whited out).
            CheckNoRedirect(path, xattrs);
            var below = new List<Contributor> { contributors[top] };
            var reaches = reachesBase && !IsOpaque(xattrs);
            for (var k = 1; reaches && k < listed.Count; k++)
            {
                var i = listed[k];
                var z = NativeFs.Z(Join(contributors[i].Dir, path));
                if (NativeFs.Lstat(z) is not { } st) continue;
                if (!st.IsDirectory)
                {
                    reaches = false;
                    break;
                }
                var x = NativeFs.Xattrs(z);
                CheckNoRedirect(path, x);
                below.Add(contributors[i]);
                if (IsOpaque(x)) reaches = false;
            }
            yield return new UpperEvent(path, MakeEntry(path, stat, disk, xattrs), layer, disk, stat, HidesBaseBelow: !reaches);
            foreach (var e in WalkUpper(path, below, reaches)) yield return e;
        }
    }

    private static bool IsWhiteout(NativeStat s) => s.IsCharDevice && s.RdevMajor == 0 && s.RdevMinor == 0;

    private static bool IsOpaque(List<KeyValuePair<string, byte[]>> xattrs) =>
        xattrs.Any(x => x.Key is "trusted.overlay.opaque" or "user.overlay.opaque" && x.Value is [(byte)'y']);

    private static void CheckNoRedirect(LayerPath path, List<KeyValuePair<string, byte[]>> xattrs)
    {
        foreach (var (k, _) in xattrs)
        {
            if (k is "trusted.overlay.redirect" or "trusted.overlay.metacopy" or "user.overlay.redirect" or "user.overlay.metacopy")
                throw new UnexpectedLayoutException($"'{path}' carries {k}: a layer directory that only an overlay mount can read");
        }
    }

    private LayerEntry MakeEntry(LayerPath path, NativeStat s, byte[] disk, List<KeyValuePair<string, byte[]>> xattrs)
    {
        var type = s.Format switch
        {
            0x8000 => LayerEntryType.RegularFile,
            0x4000 => LayerEntryType.Directory,
            0xA000 => LayerEntryType.Symlink,
            0x2000 => LayerEntryType.CharacterDevice,
            0x6000 => LayerEntryType.BlockDevice,
            0x1000 => LayerEntryType.Fifo,
            _ => throw new UnexpectedLayoutException($"'{path}' has an unknown file type {s.Mode:x}"),
        };
        // The overlay's own attributes are storage, not content (they never appear in a layer tar).
        var kept = xattrs.Where(x => !x.Key.StartsWith("trusted.overlay.", StringComparison.Ordinal)
                                     && !x.Key.StartsWith("user.overlay.", StringComparison.Ordinal)).ToList();
        return new LayerEntry
        {
            Path = path,
            Type = type,
            Mode = (int)(s.Mode & 0xFFF),
            Uid = s.Uid,
            Gid = s.Gid,
            UserName = _owners.User(s.Uid),
            GroupName = _owners.Group(s.Gid),
            Size = type == LayerEntryType.RegularFile ? s.Size : 0,
            ModificationTime = DateTimeOffset.FromUnixTimeSeconds(s.MtimeSeconds),
            LinkTarget = type == LayerEntryType.Symlink ? NativeFs.ReadLink(disk) : [],
            DevMajor = type is LayerEntryType.CharacterDevice or LayerEntryType.BlockDevice ? s.RdevMajor : 0,
            DevMinor = type is LayerEntryType.CharacterDevice or LayerEntryType.BlockDevice ? s.RdevMinor : 0,
            Xattrs = LayerEntry.CreateXattrs(kept),
        };
    }

    private static byte[] Join(byte[] dir, LayerPath path) => path.IsRoot ? dir : [.. dir, (byte)'/', .. path.Bytes];

    private void Count(long n) => BytesRead += n;

    private sealed class ByteOrder : IComparer<byte[]>
    {
        public static ByteOrder Instance { get; } = new();

        public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
    }

    /// <summary>A file opened on first read, streamed from disk, checked to have the size its entry says; every read
    /// observes the walk's token (<paramref name="walk"/>).</summary>
    private sealed class LazyFile(Func<FileStream> open, long size, Overlay2FinalSource owner, bool countRead, CancellationToken walk)
        : LayerTool.Image.ReadOnlyStream
    {
        private FileStream? _file;
        private long _read;

        public override long Length => size;

        public override long Position { get => _read; set => throw new NotSupportedException(); }

        public override int Read(Span<byte> buffer)
        {
            walk.ThrowIfCancellationRequested();
            var left = size - _read;
            if (left <= 0) return 0;
            _file ??= open();
            if (buffer.Length > left) buffer = buffer[..(int)left];
            var n = _file.Read(buffer);
            if (n == 0) throw new IOException($"a layer file ended after {_read} of its {size} bytes (it changed while being read)");
            _read += n;
            if (countRead) owner.Count(n);
            return n;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            cancellationToken.ThrowIfCancellationRequested();
            return ValueTask.FromResult(Read(buffer.Span));
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            cancellationToken.ThrowIfCancellationRequested();
            return Task.FromResult(Read(buffer.AsSpan(offset, count)));
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) _file?.Dispose();
            base.Dispose(disposing);
        }
    }
}

/// <summary>
/// uid/gid → names from the host's <c>/etc/passwd</c> and <c>/etc/group</c>: the engine's tar writer
/// (Go's <c>tar.FileInfoHeader</c> on Docker 20.10) fills uname/gname that way, so the fast path does the
/// same to write byte-identical layers.
/// </summary>
internal sealed class OwnerNames(IReadOnlyDictionary<long, string> users, IReadOnlyDictionary<long, string> groups)
{
    public static OwnerNames None { get; } = new(new Dictionary<long, string>(), new Dictionary<long, string>());

    public string User(long uid) => users.GetValueOrDefault(uid, "");

    public string Group(long gid) => groups.GetValueOrDefault(gid, "");

    public static OwnerNames FromHost(string root = "/etc") => new(Read(Path.Combine(root, "passwd")), Read(Path.Combine(root, "group")));

    private static Dictionary<long, string> Read(string file)
    {
        var map = new Dictionary<long, string>();
        if (!File.Exists(file)) return map;
        foreach (var line in File.ReadLines(file))
        {
            var parts = line.Split(':');
            if (parts.Length >= 3 && long.TryParse(parts[2], System.Globalization.CultureInfo.InvariantCulture, out var id)) map.TryAdd(id, parts[0]);
        }
        return map;
    }
}
