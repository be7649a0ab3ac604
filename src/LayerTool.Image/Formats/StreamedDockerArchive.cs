namespace LayerTool.Image.Formats;

/// <summary>
/// A partial docker-archive (the base's layers omitted, as <see cref="ImageArchiveWriter.TryOpenDockerArchive"/>
/// writes it) sent while its one new layer is still being written: the bytes before the layer need only the
/// layer's size (measured first), and the config and manifest, which need its diffID, follow it. The layer
/// goes under a fixed name, since its diffID is not known when its header is written. An upload cut short
/// before the manifest loads nothing.
/// </summary>
public static class StreamedDockerArchive
{
    /// <summary>The new layer's path in the archive.</summary>
    public const string LayerPath = "layertool-new-layer/layer.tar";

    /// <summary>
    /// The archive's first bytes, which need nothing measured: the layer's directory. Sending them at once
    /// lets the engine start unpacking (it spawns its unpacking process on the first bytes) while the layer
    /// is still being measured.
    /// </summary>
    public static byte[] Head(DateTimeOffset modificationTime)
    {
        using var block = new MemoryStream();
        new TarArchiveWriter(block, modificationTime).AddDirectory(LayerPath[..LayerPath.IndexOf('/', StringComparison.Ordinal)]);
        return block.ToArray();
    }

    /// <summary>What comes between <see cref="Head"/> and the layer's bytes: the layer's member header.</summary>
    public static byte[] LayerHeader(long layerSize, DateTimeOffset modificationTime)
    {
        using var block = new MemoryStream();
        new TarArchiveWriter(block, modificationTime).BeginMember(LayerPath, layerSize);
        return block.ToArray();
    }

    /// <summary>
    /// What comes after the layer's bytes: the member's padding, the config, and a manifest naming the
    /// <paramref name="image"/>'s layers (the first <paramref name="omittedLayers"/> ones by the paths a save
    /// gives them, without their files; the last one is the new layer).
    /// </summary>
    public static byte[] Suffix(IImage image, int omittedLayers, long layerSize, DateTimeOffset modificationTime)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (omittedLayers != image.Layers.Count - 1)
            throw new ArgumentException("a streamed archive carries exactly one layer, the last one", nameof(omittedLayers));
        using var block = new MemoryStream();
        var tar = new TarArchiveWriter(block, modificationTime);
        tar.EndMember(layerSize);
        ConfigAndManifest(tar, image, LayerPath);
        return block.ToArray();
    }

    /// <summary>
    /// The head of an archive whose new layer is a named pipe: the directory <paramref name="directory"/> (a
    /// name unique to this load, by which the pipe is found) and, in it, <c>layer.tar</c> as a FIFO member.
    /// The engine creates the pipe as it unpacks the archive, then reads the layer from it when it loads that
    /// layer, while the layer is written into it (see EngineSquashService in LayerTool.Docker).
    /// </summary>
    public static byte[] PipedHead(string directory, DateTimeOffset modificationTime)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        using var block = new MemoryStream();
        var tar = new TarArchiveWriter(block, modificationTime);
        tar.AddDirectory(directory);
        tar.AddFifo(PipedLayerPath(directory));
        return block.ToArray();
    }

    /// <summary>The rest of an archive begun with <see cref="PipedHead"/>: the config and a manifest naming the
    /// base's layers (as <see cref="Suffix"/> does) and the pipe as the new layer.</summary>
    public static byte[] PipedSuffix(IImage image, int omittedLayers, string directory, DateTimeOffset modificationTime)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (omittedLayers != image.Layers.Count - 1)
            throw new ArgumentException("a streamed archive carries exactly one layer, the last one", nameof(omittedLayers));
        using var block = new MemoryStream();
        ConfigAndManifest(new TarArchiveWriter(block, modificationTime), image, PipedLayerPath(directory));
        return block.ToArray();
    }

    /// <summary>The pipe's path in an archive begun with <see cref="PipedHead"/>.</summary>
    public static string PipedLayerPath(string directory) => $"{directory}/layer.tar";

    private static void ConfigAndManifest(TarArchiveWriter tar, IImage image, string newLayerPath)
    {
        var layerPaths = image.Layers.Take(image.Layers.Count - 1).Select(l => $"{l.DiffId.Hex}/layer.tar").Append(newLayerPath).ToList();
        var configPath = $"{image.Config.Digest.Hex}.json";
        tar.AddFile(configPath, image.Config.Bytes.Span);
        tar.AddFile(DockerArchiveManifest.FileName, DockerArchiveManifest.ToBytes([new DockerArchiveManifest(configPath, [], layerPaths)]));
        tar.Finish();
    }
}
