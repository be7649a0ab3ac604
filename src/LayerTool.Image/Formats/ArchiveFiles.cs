namespace LayerTool.Image.Formats;

/// <summary>
/// The files of an image archive, by clean relative path: members of a tar file (located by a first-pass
/// index, streamed from the file on demand) or files under an OCI layout directory.
/// </summary>
internal abstract class ArchiveFiles : IDisposable
{
    /// <summary>The largest JSON document (config, manifest, index) read into memory.</summary>
    public const long MaxDocumentSize = 64L << 20;

    protected ArchiveFiles(string description) => Description = description;

    /// <summary>Names the archive in errors.</summary>
    public string Description { get; }

    public abstract bool Exists(string path);

    /// <summary>The size of a file, or throws <see cref="ImageFormatException"/> when it is missing.</summary>
    public abstract long SizeOf(string path);

    /// <summary>Opens a file for reading, or throws <see cref="ImageFormatException"/> when it is missing.</summary>
    public abstract Stream OpenRead(string path);

    /// <summary>The names at the top level (files and directories).</summary>
    public abstract IReadOnlyCollection<string> TopLevelNames();

    /// <summary>The same files seen from a subdirectory: an archive made with <c>tar cf x.tar layout/</c>.</summary>
    public ArchiveFiles Under(string directory) => new SubdirectoryFiles(this, directory);

    /// <summary>Reads a small file (a JSON document) whole.</summary>
    public byte[] ReadAll(string path)
    {
        var size = SizeOf(path);
        if (size > MaxDocumentSize)
        {
            throw new ImageFormatException($"{Description}: '{path}' is {size} bytes, too large for a JSON document.");
        }

        using var stream = OpenRead(path);
        var buffer = new byte[size];
        try
        {
            stream.ReadExactly(buffer);
        }
        catch (EndOfStreamException e)
        {
            throw new ImageFormatException($"{Description}: '{path}' is truncated.", e);
        }

        return buffer;
    }

    /// <summary>Reads a blob by descriptor and checks its digest and size.</summary>
    public byte[] ReadBlob(Descriptor descriptor, string what)
    {
        var path = BlobPath(descriptor.Digest);
        if (!Exists(path))
        {
            throw new ImageFormatException($"{Description}: {what} {descriptor.Digest} is missing (no '{path}').");
        }

        var bytes = ReadAll(path);
        if (bytes.LongLength != descriptor.Size)
        {
            throw new ImageFormatException($"{Description}: {what} '{path}' is {bytes.LongLength} bytes, its descriptor says {descriptor.Size}.");
        }

        var actual = Digest.Compute(bytes);
        if (actual != descriptor.Digest)
        {
            throw new ImageFormatException($"{Description}: {what} '{path}': digest mismatch: expected {descriptor.Digest}, got {actual}.");
        }

        return bytes;
    }

    /// <summary>The path of a blob in an OCI layout: <c>blobs/&lt;alg&gt;/&lt;hex&gt;</c>.</summary>
    public static string BlobPath(Digest digest) => $"blobs/{digest.Algorithm}/{digest.Hex}";

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
    }
}

/// <summary>The members of a tar file, indexed once; each open streams from its own file handle.</summary>
internal sealed class TarArchiveFiles : ArchiveFiles
{
    private readonly string _path;
    private readonly IReadOnlyDictionary<string, TarMember> _members;
    private readonly bool _deleteOnDispose;

    private TarArchiveFiles(string path, string description, IReadOnlyDictionary<string, TarMember> members, bool deleteOnDispose)
        : base(description)
    {
        _path = path;
        _members = members;
        _deleteOnDispose = deleteOnDispose;
    }

    /// <summary>Indexes a tar file. <paramref name="deleteOnDispose"/>: the file is a spill this object owns.</summary>
    public static TarArchiveFiles Open(string path, string description, bool deleteOnDispose)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        var members = TarIndex.Read(stream, description);
        return new TarArchiveFiles(path, description, members, deleteOnDispose);
    }

    public override bool Exists(string path) => TryResolve(path, out _);

    public override IReadOnlyCollection<string> TopLevelNames() =>
        _members.Keys.Select(k => k.Split('/')[0]).ToHashSet(StringComparer.Ordinal);

    public override long SizeOf(string path) => Resolve(path).Size;

    public override Stream OpenRead(string path)
    {
        var member = Resolve(path);
        var file = new FileStream(_path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        try
        {
            file.Position = member.DataOffset;
            return new BoundedStream(file, member.Size, $"{Description}: '{path}'");
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (_deleteOnDispose)
        {
            try
            {
                File.Delete(_path);
            }
            catch (IOException)
            {
                // A spill that cannot be deleted now is left to the temp directory's cleaner.
            }
        }

        base.Dispose(disposing);
    }

    private TarMember Resolve(string path) =>
        TryResolve(path, out var member)
            ? member
            : throw new ImageFormatException($"{Description}: the archive has no member '{path}' (truncated or incomplete archive?).");

    private bool TryResolve(string path, out TarMember member)
    {
        var name = TarIndex.Clean(path);
        for (var depth = 0; depth < 16; depth++)
        {
            if (!_members.TryGetValue(name, out member!))
            {
                return false;
            }

            if (member.IsRegular)
            {
                return true;
            }

            if (member.IsHardLink && member.LinkName is not null)
            {
                name = TarIndex.Clean(member.LinkName);
            }
            else if (member.IsSymlink && member.LinkName is not null)
            {
                var directory = name.Contains('/', StringComparison.Ordinal) ? name[..name.LastIndexOf('/')] : string.Empty;
                name = TarIndex.Clean(member.LinkName.StartsWith('/') ? member.LinkName : directory + "/" + member.LinkName);
            }
            else
            {
                return false;
            }
        }

        member = null!;
        return false;
    }
}

/// <summary>The files under a directory (an OCI layout or an extracted docker save); nothing outside it.</summary>
internal sealed class DirectoryFiles : ArchiveFiles
{
    private readonly string _root;

    public DirectoryFiles(string root)
        : base(root) => _root = Path.GetFullPath(root);

    public override bool Exists(string path) => TryFile(path, out _);

    public override IReadOnlyCollection<string> TopLevelNames() =>
        Directory.EnumerateFileSystemEntries(_root).Select(Path.GetFileName).OfType<string>().ToList();

    public override long SizeOf(string path) => new FileInfo(File(path)).Length;

    public override Stream OpenRead(string path) =>
        new FileStream(File(path), FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);

    private string File(string path) =>
        TryFile(path, out var full) ? full : throw new ImageFormatException($"{Description}: missing file '{path}'.");

    private bool TryFile(string path, out string full)
    {
        full = Path.Combine(_root, TarIndex.Clean(path));
        var info = new FileInfo(full);
        if (!info.Exists)
        {
            return false;
        }

        var target = info.LinkTarget is null ? info : info.ResolveLinkTarget(returnFinalTarget: true) as FileInfo;
        if (target is null || !target.Exists)
        {
            return false;
        }

        var rootWithSeparator = _root.EndsWith(Path.DirectorySeparatorChar) ? _root : _root + Path.DirectorySeparatorChar;
        if (!Path.GetFullPath(target.FullName).StartsWith(rootWithSeparator, StringComparison.Ordinal))
        {
            throw new ImageFormatException($"{Description}: '{path}' links outside the directory.");
        }

        full = target.FullName;
        return true;
    }
}

/// <summary>The files under one directory of another <see cref="ArchiveFiles"/>; disposing disposes that one.</summary>
internal sealed class SubdirectoryFiles(ArchiveFiles inner, string directory) : ArchiveFiles($"{inner.Description} ({directory}/)")
{
    public override bool Exists(string path) => inner.Exists(Inside(path));

    public override long SizeOf(string path) => inner.SizeOf(Inside(path));

    public override Stream OpenRead(string path) => inner.OpenRead(Inside(path));

    public override IReadOnlyCollection<string> TopLevelNames() => [];

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }

    private string Inside(string path) => directory + "/" + TarIndex.Clean(path);
}

/// <summary>Reads at most a given number of bytes of an inner stream; a short inner stream is a truncated archive.</summary>
internal sealed class BoundedStream(Stream inner, long length, string what) : ReadOnlyStream
{
    private readonly long _length = length;
    private long _remaining = length;

    public override long Length => _length;

    public override long Position
    {
        get => _length - _remaining;
        set => throw new NotSupportedException();
    }

    public override int Read(Span<byte> buffer)
    {
        if (_remaining == 0 || buffer.IsEmpty)
        {
            return 0;
        }

        var n = inner.Read(buffer[..(int)Math.Min(buffer.Length, _remaining)]);
        return Account(n);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_remaining == 0 || buffer.IsEmpty)
        {
            return 0;
        }

        var n = await inner.ReadAsync(buffer[..(int)Math.Min(buffer.Length, _remaining)], cancellationToken).ConfigureAwait(false);
        return Account(n);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }

    private int Account(int n)
    {
        if (n == 0)
        {
            throw new ImageFormatException($"{what}: truncated: the file ended {_remaining} bytes early.");
        }

        _remaining -= n;
        return n;
    }
}
