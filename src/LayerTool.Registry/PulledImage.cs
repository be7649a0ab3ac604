using System.IO.Compression;
using LayerTool.Image;
using LayerTool.Image.Formats;

namespace LayerTool.Registry;

/// <summary>
/// An image read from a registry: its manifest exactly as served, its config, and its layers from the blob
/// cache. Layers that were not fetched (an extract of one layer) are <see cref="DescribedLayer"/>s.
/// </summary>
public sealed class PulledImage : IImage
{
    internal PulledImage(ImageReference reference, ResolvedManifest resolved, ImageConfig config, string configPath, IReadOnlyList<ILayer> layers)
    {
        Reference = reference;
        Resolved = resolved;
        Config = config;
        ConfigPath = configPath;
        Layers = layers;
    }

    /// <summary>The reference pulled.</summary>
    public ImageReference Reference { get; }

    /// <summary>The manifest (and the index it was chosen from).</summary>
    public ResolvedManifest Resolved { get; }

    /// <summary>The manifest's digest: what <c>REPO@DIGEST</c> names.</summary>
    public Digest ManifestDigest => Resolved.Fetched.Digest;

    public ImageConfig Config { get; }

    /// <summary>The config blob in the cache.</summary>
    public string ConfigPath { get; }

    public IReadOnlyList<ILayer> Layers { get; }
}

/// <summary>
/// A layer blob in the blob cache: <see cref="OpenBlob"/> gives it as stored, <see cref="Open"/> the tar,
/// with gzip or zstd undone (told by the first bytes, not the media type) and every digest checked at the end.
/// </summary>
public sealed class CachedLayer : IBlobLayer
{
    private readonly string _path;
    private readonly string _what;

    public CachedLayer(string path, Descriptor descriptor, Digest diffId, string what)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(descriptor);
        _path = path;
        Descriptor = descriptor;
        DiffId = diffId;
        _what = what;
    }

    public Digest DiffId { get; }

    public Descriptor Descriptor { get; }

    /// <summary>The blob's file.</summary>
    public string BlobPath => _path;

    Descriptor? ILayer.Descriptor => Descriptor;

    public Stream OpenBlob(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return new VerifyingStream(OpenFile(), Descriptor.Digest, Descriptor.Size, $"{_what} (blob {Descriptor.Digest})");
    }

    public Stream Open(CancellationToken cancellationToken) =>
        OpenTar(OpenBlob(cancellationToken), DiffId, _what,
            message => new ImageFormatException(message + "."));

    /// <summary>
    /// The tar in a layer blob (any stream of its stored bytes): gzip or zstd undone, told by the first bytes, and the
    /// diff ID checked at the end. <paramref name="unsupported"/> makes the error for another compression; the blob is
    /// disposed when this throws.
    /// </summary>
    internal static Stream OpenTar(Stream blob, Digest diffId, string what, Func<string, Exception> unsupported)
    {
        try
        {
            var compression = LayerCompression.Detect(blob, out var rewound);
            Stream tar = compression switch
            {
                Compression.None => rewound,
                Compression.Gzip => new GZipStream(rewound, CompressionMode.Decompress, leaveOpen: false),
                Compression.Zstd => new ZstdSharp.DecompressionStream(rewound, leaveOpen: false),
                _ => throw unsupported($"{what}: the layer is {compression.ToString().ToLowerInvariant()}-compressed, which LayerTool cannot read (gzip, zstd and uncompressed layers are)"),
            };
            return new VerifyingStream(tar, diffId, null, $"{what} (diff ID)");
        }
        catch
        {
            blob.Dispose();
            throw;
        }
    }

    private FileStream OpenFile() =>
        new(_path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan | FileOptions.Asynchronous);

    public override string ToString() => _what;
}
