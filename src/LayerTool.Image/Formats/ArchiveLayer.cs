namespace LayerTool.Image.Formats;

/// <summary>
/// A layer stored in an image archive (docker-archive member or OCI blob). Every <see cref="Open"/>
/// streams the member again from the archive, checks the stored digest and size when known, undoes gzip
/// and checks the diff ID at the end.
/// </summary>
internal sealed class ArchiveLayer : IBlobLayer
{
    private readonly ArchiveFiles _files;
    private readonly string _path;
    private readonly Digest? _blobDigest;
    private readonly long? _blobSize;
    private readonly string _what;

    public ArchiveLayer(ArchiveFiles files, string path, Digest diffId, Descriptor? descriptor, Digest? blobDigest, string what)
    {
        _files = files;
        _path = path;
        DiffId = diffId;
        Descriptor = descriptor;
        _blobDigest = descriptor?.Digest ?? blobDigest;
        _blobSize = descriptor?.Size;
        _what = what;
    }

    public Digest DiffId { get; }

    public Descriptor? Descriptor { get; }

    /// <summary>The member path inside the archive.</summary>
    public string Path => _path;

    public Stream Open(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var raw = _files.OpenRead(_path);
        try
        {
            var sameAsDiffId = _blobDigest == DiffId;
            var blob = _blobDigest is { } digest && !sameAsDiffId
                ? new VerifyingStream(raw, digest, _blobSize, $"{_what} (stored blob '{_path}')")
                : raw;
            var compression = LayerCompression.Detect(blob, out var rewound);
            var tar = compression == Compression.None ? rewound : LayerCompression.Decompress(rewound, $"{_what} ('{_path}')");
            return new VerifyingStream(tar, DiffId, sameAsDiffId ? _blobSize : null, $"{_what} ('{_path}')");
        }
        catch
        {
            raw.Dispose();
            throw;
        }
    }

    public Stream OpenBlob(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (Descriptor is null)
        {
            throw new InvalidOperationException($"{_what}: the stored blob of this layer is not described; use Open.");
        }

        return new VerifyingStream(_files.OpenRead(_path), Descriptor.Digest, Descriptor.Size, $"{_what} (stored blob '{_path}')");
    }

    public override string ToString() => $"{_what} ({DiffId})";
}
