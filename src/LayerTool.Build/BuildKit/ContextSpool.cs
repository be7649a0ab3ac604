using LayerTool.Build.Context;
using LayerTool.Dockerfile.DockerIgnore;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.Build.BuildKit;

/// <summary>
/// The build context as BuildKit's own client sends it: the directory filtered by its <c>.dockerignore</c>,
/// the Dockerfile and <c>.dockerignore</c> included only when the rules keep them (the classic client adds
/// them back; BuildKit does not). Written once to a temp tar (deleted at dispose) and reused for every build;
/// each build's upload is that tar with, when needed, one more file (the Dockerfile to build) before its end.
/// Names up to 100 bytes sit in the headers as they are, never in a PAX record (see
/// <see cref="LayerTarWriter.NamesInHeader"/>): the engine's frontend decides whether the body is a tar from its
/// first 1,024 bytes, and a PAX extended header before the first entry makes that look fail (the body is then read
/// as a Dockerfile).
/// </summary>
internal sealed class ContextSpool : IDisposable
{
    private const int EndOfArchive = 1024;
    private readonly FileStream _file;
    private readonly HashSet<string> _files;

    private ContextSpool(FileStream file, long entriesLength, HashSet<string> files)
    {
        _file = file;
        EntriesLength = entriesLength;
        _files = files;
    }

    /// <summary>Bytes of the spool before its end-of-archive blocks.</summary>
    public long EntriesLength { get; }

    /// <summary>Whether a regular file with this context path is in the upload.</summary>
    public bool ContainsFile(string contextPath) => _files.Contains(contextPath);

    /// <summary>Walks and spools <paramref name="directory"/>. Files, directories and symlinks go in; sockets, devices and FIFOs do not.</summary>
    public static async Task<ContextSpool> CreateAsync(string directory, CancellationToken cancellationToken)
    {
        var context = BuildContext.Open(directory, null);
        var file = new FileStream(Path.Combine(Path.GetTempPath(), $"layertool-context-{Environment.ProcessId}-{Guid.NewGuid():N}.tar"),
            FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 81920, FileOptions.DeleteOnClose | FileOptions.Asynchronous);
        var files = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            var writer = NewWriter(file);
            await using (writer.ConfigureAwait(false))
            {
                await WriteDirectoryAsync(writer, context.Root, "", context.Rules, files, cancellationToken).ConfigureAwait(false);
                await writer.FinishAsync(cancellationToken).ConfigureAwait(false);
            }
            await file.FlushAsync(cancellationToken).ConfigureAwait(false);
            return new ContextSpool(file, file.Length - EndOfArchive, files);
        }
        catch
        {
            await file.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static LayerTarWriter NewWriter(Stream output) => new(output, leaveOpen: true, hashLayer: false) { NamesInHeader = true };

    private static LayerEntry Entry(string name, LayerEntryType type, UnixFileMode mode, DateTimeOffset mtime) => new()
    {
        Path = LayerPath.Parse(name),
        Type = type,
        Mode = (int)mode,
        ModificationTime = mtime,
    };

    private static async Task WriteDirectoryAsync(LayerTarWriter writer, string directory, string prefix, DockerIgnoreMatcher rules, HashSet<string> files, CancellationToken cancellationToken)
    {
        foreach (var info in new DirectoryInfo(directory).EnumerateFileSystemInfos().OrderBy(i => i.Name, StringComparer.Ordinal))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var rel = prefix.Length == 0 ? info.Name : prefix + "/" + info.Name;
            var excluded = rules.IsExcluded(rel);
            var isDirectory = info is DirectoryInfo && info.LinkTarget is null;
            if (excluded)
            {
                // An excluded directory is still walked when a "!" rule may bring back something below it.
                if (isDirectory && rules.HasExclusions) await WriteDirectoryAsync(writer, info.FullName, rel, rules, files, cancellationToken).ConfigureAwait(false);
                continue;
            }
            var mode = info.UnixFileMode;
            var mtime = info.LastWriteTimeUtc;
            if (info.LinkTarget is { } target)
            {
                var link = Entry(rel, LayerEntryType.Symlink, (UnixFileMode)0x1FF, mtime) with { LinkTarget = System.Text.Encoding.UTF8.GetBytes(target) };
                await writer.WriteEntryAsync(link, null, cancellationToken).ConfigureAwait(false);
            }
            else if (isDirectory)
            {
                await writer.WriteEntryAsync(Entry(rel, LayerEntryType.Directory, mode, mtime), null, cancellationToken).ConfigureAwait(false);
                await WriteDirectoryAsync(writer, info.FullName, rel, rules, files, cancellationToken).ConfigureAwait(false);
            }
            else if (info is FileInfo f && IsRegular(f))
            {
                var data = new FileStream(f.FullName, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 81920, FileOptions.Asynchronous | FileOptions.SequentialScan);
                await using (data.ConfigureAwait(false))
                {
                    var entry = Entry(rel, LayerEntryType.RegularFile, mode, mtime) with { Size = data.Length };
                    await writer.WriteEntryAsync(entry, data, cancellationToken).ConfigureAwait(false);
                }
                files.Add(rel);
            }
        }
    }

    /// <summary>False for FIFOs, sockets and device nodes, which .NET lists as files (and a FIFO would block a read).</summary>
    private static bool IsRegular(FileInfo f) => LayerTool.Docker.Overlay2.HostFiles.IsRegularFile(f.FullName);

    /// <summary>
    /// The upload for one build: the spooled entries, then <paramref name="extra"/> (context path and content, with
    /// their directories; epoch times, so that the same files make the same bytes), then the end of the archive.
    /// Read-only, forward-only.
    /// </summary>
    public async Task<Stream> OpenAsync(IReadOnlyList<KeyValuePair<string, byte[]>> extra, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(extra);
        var tail = new MemoryStream();
        var writer = NewWriter(tail);
        await using (writer.ConfigureAwait(false))
        {
            var directories = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (name, content) in extra)
            {
                var parts = name.Split('/');
                for (var i = 1; i < parts.Length; i++)
                {
                    var directory = string.Join('/', parts[..i]);
                    if (directories.Add(directory))
                        await writer.WriteEntryAsync(Entry(directory, LayerEntryType.Directory, (UnixFileMode)0x1ED, DateTimeOffset.UnixEpoch), null, cancellationToken).ConfigureAwait(false);
                }
                var file = Entry(name, LayerEntryType.RegularFile, (UnixFileMode)0x1A4, DateTimeOffset.UnixEpoch) with { Size = content.Length };
                using var data = new MemoryStream(content, writable: false);
                await writer.WriteEntryAsync(file, data, cancellationToken).ConfigureAwait(false);
            }
            await writer.FinishAsync(cancellationToken).ConfigureAwait(false);
        }
        tail.Position = 0;
        return new ConcatStream(new SliceStream(_file, EntriesLength), tail);
    }

    public void Dispose() => _file.Dispose();

    /// <summary>The first <c>length</c> bytes of a file, read from its start through a positional read (the spool is shared by builds).</summary>
    private sealed class SliceStream(FileStream file, long length) : LayerTool.Image.ReadOnlyStream
    {
        private long _position;

        public override int Read(Span<byte> buffer)
        {
            var n = (int)Math.Min(buffer.Length, length - _position);
            if (n <= 0) return 0;
            n = RandomAccess.Read(file.SafeFileHandle, buffer[..n], _position);
            _position += n;
            return n;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = (int)Math.Min(buffer.Length, length - _position);
            if (n <= 0) return 0;
            n = await RandomAccess.ReadAsync(file.SafeFileHandle, buffer[..n], _position, cancellationToken).ConfigureAwait(false);
            _position += n;
            return n;
        }

    }

    private sealed class ConcatStream(Stream first, Stream second) : LayerTool.Image.ReadOnlyStream
    {
        private bool _onSecond;

        public override int Read(Span<byte> buffer)
        {
            if (!_onSecond)
            {
                var n = first.Read(buffer);
                if (n > 0) return n;
                _onSecond = true;
            }
            return second.Read(buffer);
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (!_onSecond)
            {
                var n = await first.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
                if (n > 0) return n;
                _onSecond = true;
            }
            return await second.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        }


        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                first.Dispose();
                second.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
