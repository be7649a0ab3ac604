namespace LayerTool.Image;

/// <summary>
/// An image made of a config and layers from anywhere (e.g. a base's layers plus a new one), checked so
/// that the layers' diff IDs are the config's <c>rootfs.diff_ids</c>, in order.
/// </summary>
public sealed class ComposedImage : IImage
{
    public ComposedImage(ImageConfig config, IReadOnlyList<ILayer> layers)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(layers);
        if (layers.Count != config.DiffIds.Count)
        {
            throw new ImageFormatException($"The config lists {config.DiffIds.Count} diff_ids but the image has {layers.Count} layers.");
        }

        for (var i = 0; i < layers.Count; i++)
        {
            if (layers[i].DiffId != config.DiffIds[i])
            {
                throw new ImageFormatException($"Layer {i + 1} has diff ID {layers[i].DiffId} but the config lists {config.DiffIds[i]}.");
            }
        }

        Config = config;
        Layers = layers;
    }

    public ImageConfig Config { get; }

    public IReadOnlyList<ILayer> Layers { get; }
}

/// <summary>
/// An uncompressed layer tar in a file (e.g. the layer a squash just wrote). <see cref="Open"/> checks the
/// diff ID at the end of the stream.
/// </summary>
public sealed class FileLayer : ILayer
{
    private readonly string _path;

    public FileLayer(string path, Digest diffId)
    {
        ArgumentNullException.ThrowIfNull(path);
        _path = path;
        DiffId = diffId;
    }

    public Digest DiffId { get; }

    /// <summary>The layer tar's file.</summary>
    internal string FilePath => _path;

    /// <summary>Null: the file's size is read when needed, and the blob is the tar itself.</summary>
    public Descriptor? Descriptor => null;

    /// <summary>A layer from a file, its diff ID computed by reading it once.</summary>
    public static async Task<FileLayer> CreateAsync(string path, CancellationToken cancellationToken)
    {
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan | FileOptions.Asynchronous);
        await using (stream.ConfigureAwait(false))
        {
            return new FileLayer(path, await Digest.ComputeAsync(stream, cancellationToken).ConfigureAwait(false));
        }
    }

    public Stream Open(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var file = new FileStream(_path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        return new Formats.VerifyingStream(file, DiffId, file.Length, $"layer file '{_path}'");
    }
}

/// <summary>
/// A layer known only by its diff ID and stored descriptor, whose bytes are not at hand: a base layer
/// the engine already has, listed in a partial archive but not written. <see cref="Open"/> throws.
/// </summary>
public sealed record DescribedLayer(Digest DiffId, Descriptor? Descriptor) : ILayer
{
    public Stream Open(CancellationToken cancellationToken) =>
        throw new ImageFormatException($"The contents of layer {DiffId} are not available here (only its descriptor is).");
}
