using System.Security.Cryptography;
using System.Text;
using LayerTool.Image.Layers.Content;
using LayerTool.Image.Layers.Diff;
using Microsoft.Win32.SafeHandles;

namespace LayerTool.Image.Layers.Index;

/// <summary>One path of an on-disk index, as read back.</summary>
/// <param name="Ordinal">0-based position in walk order.</param>
/// <param name="Entry">Metadata (never a hard-link type: a member of a group carries the group's metadata).</param>
/// <param name="Hash">SHA-256 of a regular file's content.</param>
/// <param name="Group">The ordinal of the group's first path (the path's own ordinal when it is not a later member).</param>
/// <param name="FirstLink">The group's first path when this path is a later member of a hard-link group.</param>
/// <param name="Origin">Where the content of a regular file is, when the writer was told (an entry ordinal of
/// the layer stack the index was merged from, see <see cref="ContentSpool"/>); -1 otherwise.</param>
internal sealed record StoredRecord(long Ordinal, LayerEntry Entry, byte[]? Hash, long Group, LayerPath? FirstLink, long Origin = -1);

/// <summary>
/// A filesystem index on disk, in walk order (format <c>LTFSIDX3</c>), read through one file handle with
/// positional reads, so many walks and lookups can share it. This is what keeps a squash's memory flat
/// whatever the number of paths: <see cref="LayerDiff"/> walks the base from here, records the final
/// filesystem here, and <see cref="LayerVerifier"/> merges them as streams; only a sparse key index (one
/// path in <see cref="SparseEvery"/>) and the hard-link groups stay in memory.
/// </summary>
/// <remarks>
/// Layout: a magic line; one record per path (0x01, path front-coded (see <see cref="PathEncoder"/>) against the
/// record before it, or every <see cref="SparseEvery"/> records, where lookups start, against the previous such
/// record, whose path the sparse key index holds in memory; type, mode, uid, gid, owner names, size, time,
/// link target, device numbers, xattrs, the content hash of a regular file, the group as ordinal + 1 or 0
/// for its own, for a later group member the first path, and the content's origin plus one or 0); an end mark 0x00; a trailer (path count,
/// the linked groups, the sparse key index); the trailer's offset (8 bytes, little-endian); and the SHA-256
/// of everything before it, so a damaged cache file is detected rather than trusted. Written by hand: a
/// sorted, append-only record file with positional lookups is not something the BCL offers.
/// </remarks>
internal sealed class FsIndexStore
{
    internal static ReadOnlySpan<byte> Magic => "LTFSIDX3\n"u8;

    /// <summary>One path in this many is kept in memory as a lookup key (a lookup decodes at most this many records).</summary>
    internal const int SparseEvery = 64;

    private readonly SafeFileHandle _handle;
    private readonly long _recordsEnd;
    private readonly List<(LayerPath Path, long Offset, long Ordinal)> _sparse;

    internal FsIndexStore(SafeFileHandle handle, long count, long recordsEnd, HashSet<long> linkedGroups, List<(LayerPath, long, long)> sparse)
    {
        _handle = handle;
        Count = count;
        _recordsEnd = recordsEnd;
        LinkedGroups = linkedGroups;
        _sparse = sparse;
    }

    public long Count { get; }

    /// <summary>Ordinals of the first paths of groups with more than one path.</summary>
    public HashSet<long> LinkedGroups { get; }

    /// <summary>
    /// A new temp file that has no name any more (unlinked at once; on Windows, deleted on close): it goes
    /// with its last handle, even if the process ends without running finalizers.
    /// </summary>
    internal static SafeFileHandle CreateUnlinked(string? tempDirectory)
    {
        var path = LayerDiff.TempFile(tempDirectory);
        if (OperatingSystem.IsWindows())
            return File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read | FileShare.Delete, FileOptions.DeleteOnClose);
        var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read);
        File.Delete(path);
        return handle;
    }

    /// <summary>Opens an index file; <paramref name="verify"/> checks its SHA-256 trailer first.</summary>
    /// <exception cref="ImageFormatException">Not an index, truncated or damaged.</exception>
    public static FsIndexStore Open(string path, bool verify)
    {
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
        try
        {
            return Open(handle, verify);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    internal static FsIndexStore Open(SafeFileHandle handle, bool verify)
    {
        var length = RandomAccess.GetLength(handle);
        if (length < Magic.Length + 1 + 8 + 32) throw new ImageFormatException("the filesystem index is truncated");
        Span<byte> head = stackalloc byte[Magic.Length];
        RandomAccess.Read(handle, head, 0);
        if (!head.SequenceEqual(Magic)) throw new ImageFormatException("not a LayerTool filesystem index (or one of an older format)");
        Span<byte> tail = stackalloc byte[40];
        RandomAccess.Read(handle, tail, length - 40);
        if (verify)
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[1 << 16];
            for (long at = 0; at < length - 32;)
            {
                var n = RandomAccess.Read(handle, buffer.AsSpan(0, (int)Math.Min(buffer.Length, length - 32 - at)), at);
                if (n == 0) throw new ImageFormatException("the filesystem index is truncated");
                sha.AppendData(buffer, 0, n);
                at += n;
            }
            if (!sha.GetHashAndReset().AsSpan().SequenceEqual(tail[8..])) throw new ImageFormatException("the filesystem index is damaged (checksum mismatch)");
        }
        var recordsEnd = System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(tail[..8]);
        if (recordsEnd < Magic.Length || recordsEnd >= length - 40) throw new ImageFormatException("the filesystem index is damaged (bad trailer offset)");
        using var r = new BinaryReader(new BufferedStream(new HandleStream(handle, recordsEnd, length - 40), 1 << 16), Encoding.UTF8);
        try
        {
            if (r.ReadByte() != 0) throw new ImageFormatException("the filesystem index is damaged (no end mark)");
            var count = r.Read7BitEncodedInt64();
            var linked = new HashSet<long>();
            for (var n = r.Read7BitEncodedInt64(); n > 0; n--) linked.Add(r.Read7BitEncodedInt64());
            var sparse = new List<(LayerPath, long, long)>();
            var keys = new PathDecoder();
            for (var n = r.Read7BitEncodedInt64(); n > 0; n--)
                sparse.Add((keys.Read(r), r.Read7BitEncodedInt64(), r.Read7BitEncodedInt64()));
            return new FsIndexStore(handle, count, recordsEnd, linked, sparse);
        }
        catch (Exception e) when (e is EndOfStreamException or FormatException or ArgumentException)
        {
            throw new ImageFormatException("the filesystem index is damaged (bad trailer)", e);
        }
    }

    /// <summary>Closes the file handle.</summary>
    public void Close() => _handle.Dispose();

    /// <summary>Every record, in walk order.</summary>
    public IEnumerable<StoredRecord> Records() => ReadFrom(Magic.Length, 0, LayerPath.Root);

    /// <summary>The record of <paramref name="path"/>, or null.</summary>
    public StoredRecord? Find(LayerPath path)
    {
        // The last key at or before the path, then forward: keys are in walk order.
        int lo = 0, hi = _sparse.Count - 1, at = -1;
        while (lo <= hi)
        {
            var mid = lo + ((hi - lo) >> 1);
            if (_sparse[mid].Path.CompareTo(path) <= 0)
            {
                at = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }
        if (at < 0) return null;
        var (_, offset, ordinal) = _sparse[at];
        var seen = 0;
        foreach (var record in ReadFrom(offset, ordinal, at == 0 ? LayerPath.Root : _sparse[at - 1].Path))
        {
            var c = record.Entry.Path.CompareTo(path);
            if (c == 0) return record;
            if (c > 0 || ++seen > SparseEvery) return null;
        }
        return null;
    }

    /// <param name="offset">Where a record that is a sparse key starts.</param>
    /// <param name="ordinal">Its ordinal.</param>
    /// <param name="previousKey">The sparse key before it (the root for the first): what its path is coded against.</param>
    private IEnumerable<StoredRecord> ReadFrom(long offset, long ordinal, LayerPath previousKey)
    {
        using var r = new BinaryReader(new BufferedStream(new HandleStream(_handle, offset, _recordsEnd), 1 << 16), Encoding.UTF8);
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        var paths = new PathDecoder();
        while (true)
        {
            StoredRecord? record;
            try
            {
                record = ReadRecord(r, ordinal, names, paths, ordinal % SparseEvery == 0 ? previousKey : null);
            }
            catch (Exception e) when (e is EndOfStreamException or FormatException or ArgumentException)
            {
                throw new ImageFormatException("the filesystem index is damaged (bad record)", e);
            }
            if (record is null) yield break;
            if (ordinal % SparseEvery == 0) previousKey = record.Entry.Path;
            yield return record;
            ordinal++;
        }
    }

    /// <summary>Writes one record (see the remarks for the layout).</summary>
    internal static void WriteRecord(BinaryWriter w, PathEncoder paths, LayerPath? against, LayerEntry entry, byte[]? hash, long groupPlusOne, LayerPath? firstLink, long origin)
    {
        w.Write((byte)1);
        WriteEntry(w, paths, against, entry);
        if (entry.Type == LayerEntryType.RegularFile) w.Write(hash ?? throw new ArgumentException($"'{entry.Name}' has no content hash", nameof(hash)));
        w.Write7BitEncodedInt64(groupPlusOne);
        if (groupPlusOne != 0) WriteBytes(w, firstLink!.Bytes);
        w.Write7BitEncodedInt64(origin + 1);
    }

    /// <summary>Writes an entry's metadata (shared with the written-entry log), its path front-coded against the
    /// previous one or <paramref name="against"/>.</summary>
    internal static void WriteEntry(BinaryWriter w, PathEncoder paths, LayerPath? against, LayerEntry entry)
    {
        paths.Write(w, entry.Path, against);
        w.Write((byte)entry.Type);
        w.Write7BitEncodedInt(entry.Mode);
        w.Write7BitEncodedInt64(entry.Uid);
        w.Write7BitEncodedInt64(entry.Gid);
        w.Write(entry.UserName);
        w.Write(entry.GroupName);
        w.Write7BitEncodedInt64(entry.Size);
        w.Write(entry.ModificationTime.UtcTicks);
        WriteBytes(w, entry.LinkTarget);
        w.Write7BitEncodedInt64(entry.DevMajor);
        w.Write7BitEncodedInt64(entry.DevMinor);
        w.Write7BitEncodedInt(entry.Xattrs.Count);
        foreach (var (k, v) in entry.Xattrs.OrderBy(x => x.Key, StringComparer.Ordinal))
        {
            w.Write(k);
            WriteBytes(w, v);
        }
    }

    private static StoredRecord? ReadRecord(BinaryReader r, long ordinal, Dictionary<string, string> names, PathDecoder paths, LayerPath? against)
    {
        // The window ends at the end mark (or, while the file is being written, at the last whole record).
        if (r.BaseStream.ReadByte() != 1) return null;
        var entry = ReadEntry(r, names, paths, against);
        var hash = entry.Type == LayerEntryType.RegularFile ? ReadFixed(r, 32) : null;
        var group = r.Read7BitEncodedInt64();
        var first = group == 0 ? null : LayerPath.FromBytes(ReadBytes(r));
        var origin = r.Read7BitEncodedInt64() - 1;
        return new StoredRecord(ordinal, entry, hash, group == 0 ? ordinal : group - 1, first, origin);
    }

    /// <summary>Reads what <see cref="WriteEntry"/> wrote.</summary>
    internal static LayerEntry ReadEntry(BinaryReader r, Dictionary<string, string> names, PathDecoder paths, LayerPath? against = null)
    {
        var path = paths.Read(r, against);
        var type = (LayerEntryType)r.ReadByte();
        var mode = r.Read7BitEncodedInt();
        var uid = r.Read7BitEncodedInt64();
        var gid = r.Read7BitEncodedInt64();
        // Owner names repeat on nearly every path: one shared string each.
        var uname = Intern(names, r.ReadString());
        var gname = Intern(names, r.ReadString());
        var size = r.Read7BitEncodedInt64();
        var ticks = r.ReadInt64();
        var link = ReadBytes(r);
        var major = r.Read7BitEncodedInt64();
        var minor = r.Read7BitEncodedInt64();
        var xcount = r.Read7BitEncodedInt();
        var xattrs = xcount == 0 ? null : new List<KeyValuePair<string, byte[]>>(xcount);
        for (var i = 0; i < xcount; i++) xattrs!.Add(new(r.ReadString(), ReadBytes(r)));
        return new LayerEntry
        {
            Path = path,
            Type = type,
            Mode = mode,
            Uid = uid,
            Gid = gid,
            UserName = uname,
            GroupName = gname,
            Size = size,
            ModificationTime = new DateTimeOffset(ticks, TimeSpan.Zero),
            LinkTarget = link,
            DevMajor = major,
            DevMinor = minor,
            Xattrs = xattrs is null ? LayerEntry.CreateXattrs([]) : LayerEntry.CreateXattrs(xattrs),
        };
    }

    private static string Intern(Dictionary<string, string> pool, string name)
    {
        if (name.Length == 0) return "";
        if (pool.TryGetValue(name, out var shared)) return shared;
        if (pool.Count < 4096) pool[name] = name;
        return name;
    }

    internal static void WriteBytes(BinaryWriter w, ReadOnlySpan<byte> bytes)
    {
        w.Write7BitEncodedInt(bytes.Length);
        w.Write(bytes);
    }

    internal static byte[] ReadBytes(BinaryReader r)
    {
        var n = r.Read7BitEncodedInt();
        if (n is < 0 or > 1 << 24) throw new FormatException("bad length");
        return ReadFixed(r, n);
    }

    private static byte[] ReadFixed(BinaryReader r, int n)
    {
        var bytes = r.ReadBytes(n);
        if (bytes.Length < n) throw new EndOfStreamException();
        return bytes;
    }

    /// <summary>A window of a file read with positional reads (any number of them may share the handle).</summary>
    internal sealed class HandleStream(SafeFileHandle handle, long start, long end) : ReadOnlyStream
    {
        private long _at = start;

        public override int Read(Span<byte> buffer)
        {
            if (_at >= end) return 0;
            if (buffer.Length > end - _at) buffer = buffer[..(int)(end - _at)];
            var n = RandomAccess.Read(handle, buffer, _at);
            _at += n;
            return n;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(Read(buffer.Span));
    }
}

/// <summary>
/// Writes an <see cref="FsIndexStore"/> from paths given in walk order (a flattened filesystem: an export,
/// the overlay2 fast path's merged view), answering lookups of paths already written (hard-link targets)
/// on the way. Missing parent directories are added (0755, root) as an applier would create them. The file
/// is an unlinked temp file (see <see cref="FsIndexStore.CreateUnlinked"/>) unless a path is given.
/// </summary>
internal sealed class FsIndexStoreWriter : IDisposable
{
    private readonly SafeFileHandle _handle;
    private readonly HandleWriter _sink;
    private readonly BinaryWriter _w;
    private readonly HashSet<long> _linked = [];
    private readonly List<(LayerPath, long, long)> _sparse = [];
    private readonly List<LayerPath> _dirs = [];
    private readonly PathEncoder _paths = new();
    private LayerPath _lastKey = LayerPath.Root;
    private LayerPath? _last;
    private bool _lastIsDirectory;
    private long _count;
    private bool _done;

    /// <param name="path">The file to create (kept); null for an unlinked temp file in <paramref name="tempDirectory"/>.</param>
    /// <param name="tempDirectory">Where a temp file goes (the system's when null).</param>
    public FsIndexStoreWriter(string? path, string? tempDirectory)
    {
        _handle = path is null ? FsIndexStore.CreateUnlinked(tempDirectory) : File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read);
        _sink = new HandleWriter(_handle);
        _w = new BinaryWriter(_sink, Encoding.UTF8, leaveOpen: true);
        _w.Write(FsIndexStore.Magic);
    }

    public long Count => _count;

    /// <summary>Adds the next path. A hard-link entry joins its target's group (the target must be written already).</summary>
    /// <returns>The path as stored: its group (its inode in <see cref="FsIndex"/> terms), metadata and content hash.</returns>
    /// <exception cref="ImageFormatException">Not in walk order, under a non-directory, or a link to a path that is not there.</exception>
    public StoredRecord Add(LayerEntry entry, byte[]? hash) => Add(entry, hash, -1);

    /// <summary>Adds the next path, with where its content is (see <see cref="StoredRecord.Origin"/>; a link takes its target's).</summary>
    public StoredRecord Add(LayerEntry entry, byte[]? hash, long origin)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (_done) throw new InvalidOperationException("the index was already built");
        var path = entry.Path;
        if (path.IsRoot) throw new ArgumentException("the root is not a path of an index", nameof(entry));
        if (_last is not null && _last.CompareTo(path) >= 0)
            throw new ImageFormatException($"the filesystem is not in walk order: '{path}' comes after '{_last}'");
        if (_last is not null && !_lastIsDirectory && _last.IsAncestorOf(path))
            throw new ImageFormatException($"'{path}' is under '{_last}', which is not a directory");
        while (_dirs.Count > 0 && !_dirs[^1].IsAncestorOf(path)) _dirs.RemoveAt(_dirs.Count - 1);
        if (_dirs.Count != path.Depth - 1)
        {
            // Parents the stream did not carry, created as an applier does.
            foreach (var dir in path.Ancestors())
            {
                if (_dirs.Contains(dir)) continue;
                Append(new LayerEntry { Path = dir, Type = LayerEntryType.Directory, Mode = 0x1ED }, null, 0, null, -1);
                _dirs.Add(dir);
            }
        }

        StoredRecord record;
        if (entry.Type == LayerEntryType.HardLink)
        {
            var targetPath = entry.HardLinkTarget;
            var target = Find(targetPath)
                ?? throw new ImageFormatException($"hard link '{entry.Name}' points to '{targetPath}', which is not earlier in the filesystem");
            if (target.Entry.IsDirectory) throw new ImageFormatException($"hard link '{entry.Name}' points to directory '{targetPath}'");
            _linked.Add(target.Group);
            record = Append(target.Entry with { Path = path }, target.Hash, target.Group + 1, target.FirstLink ?? target.Entry.Path, target.Origin);
        }
        else
        {
            if (entry.Type != LayerEntryType.RegularFile && entry.Size != 0) entry = entry with { Size = 0 };
            record = Append(entry, hash, 0, null, entry.Type == LayerEntryType.RegularFile ? origin : -1);
            if (entry.IsDirectory) _dirs.Add(path);
        }
        return record;
    }

    private StoredRecord Append(LayerEntry entry, byte[]? hash, long groupPlusOne, LayerPath? first, long origin)
    {
        var ordinal = _count++;
        LayerPath? against = null;
        if (ordinal % FsIndexStore.SparseEvery == 0)
        {
            // A lookup starts here knowing only the key before it.
            _sparse.Add((entry.Path, _sink.Position, ordinal));
            against = _lastKey;
            _lastKey = entry.Path;
        }
        FsIndexStore.WriteRecord(_w, _paths, against, entry, hash, groupPlusOne, first, origin);
        _last = entry.Path;
        _lastIsDirectory = entry.IsDirectory;
        return new StoredRecord(ordinal, entry, hash, groupPlusOne == 0 ? ordinal : groupPlusOne - 1, first, origin);
    }

    /// <summary>A path written already, or null.</summary>
    public StoredRecord? Find(LayerPath path)
    {
        ArgumentNullException.ThrowIfNull(path);
        _sink.Flush();
        return new FsIndexStore(_handle, _count, _sink.Position, _linked, _sparse).Find(path);
    }

    /// <summary>
    /// Finishes the file and opens it as an index, which shares this writer's file handle: dispose of the
    /// writer only once the index is no longer used (or never: the handle's finalizer closes it, and an
    /// unlinked temp file leaves nothing behind even when the process ends first).
    /// </summary>
    public FsIndex Build()
    {
        if (_done) throw new InvalidOperationException("the index was already built");
        _done = true;
        var recordsEnd = _sink.Position;
        _w.Write((byte)0);
        _w.Write7BitEncodedInt64(_count);
        _w.Write7BitEncodedInt64(_linked.Count);
        foreach (var g in _linked.Order()) _w.Write7BitEncodedInt64(g);
        _w.Write7BitEncodedInt64(_sparse.Count);
        var keys = new PathEncoder();
        foreach (var (p, offset, ordinal) in _sparse)
        {
            keys.Write(_w, p);
            _w.Write7BitEncodedInt64(offset);
            _w.Write7BitEncodedInt64(ordinal);
        }
        _w.Write(recordsEnd);
        _w.Flush();
        _sink.Seal();
        return new FsIndex(new FsIndexStore(_handle, _count, recordsEnd, _linked, _sparse));
    }

    /// <summary>Closes the file (an index built from it can no longer be read).</summary>
    public void Dispose()
    {
        _w.Dispose();
        _sink.Dispose();
        _handle.Dispose();
    }
}

/// <summary>
/// Appends to the handle with positional writes through a buffer, hashing every byte for the trailer's
/// checksum (a FileStream would do the buffering, but not share the handle with positional readers).
/// </summary>
internal sealed class HandleWriter(SafeFileHandle handle, bool checksum = true) : Stream
{
    private readonly IncrementalHash? _sha = checksum ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null;
    private readonly byte[] _buffer = new byte[1 << 16];
    private int _buffered;
    private long _flushed;

    /// <summary>The logical end of the file (written and buffered bytes).</summary>
    public override long Position { get => _flushed + _buffered; set => throw new NotSupportedException(); }

    public override long Length => Position;

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (_buffered + buffer.Length > _buffer.Length) Flush();
        if (buffer.Length >= _buffer.Length)
        {
            Put(buffer);
            return;
        }
        buffer.CopyTo(_buffer.AsSpan(_buffered));
        _buffered += buffer.Length;
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void WriteByte(byte value) => Write([value]);

    public override void Flush()
    {
        if (_buffered == 0) return;
        Put(_buffer.AsSpan(0, _buffered));
        _buffered = 0;
    }

    /// <summary>Flushes and appends the SHA-256 of everything written.</summary>
    public void Seal()
    {
        Flush();
        Put(_sha!.GetHashAndReset(), hash: false);
    }

    private void Put(ReadOnlySpan<byte> bytes, bool hash = true)
    {
        if (hash) _sha?.AppendData(bytes);
        RandomAccess.Write(handle, bytes, _flushed);
        _flushed += bytes.Length;
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) _sha?.Dispose();
        base.Dispose(disposing);
    }
}
