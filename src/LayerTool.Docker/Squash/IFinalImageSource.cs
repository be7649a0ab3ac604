using LayerTool.Docker.Images;
using LayerTool.Image;
using LayerTool.Image.Layers;

namespace LayerTool.Docker.Squash;

/// <summary>
/// How a squash reads the final image from an engine: its exact config and its filesystem as one
/// walk-order stream. <see cref="ExportImageSource"/> works against any engine through the API; a local
/// fast path (LayerTool running as root next to the engine, reading the graph driver's layer directories
/// named by <see cref="EngineImage.GraphDriver"/>) can implement the same two members and plug in through
/// <see cref="EngineSquashSettings.FinalImageSources"/>.
/// </summary>
public interface IFinalImageSource : IDisposable
{
    /// <summary>The final image: its config (kept by the squash) and, where the source has them, its layers.</summary>
    IImage Image { get; }

    /// <summary>Writes the layer that turns <paramref name="baseIndex"/> into the image's filesystem (see <see cref="LayerDiff"/>).</summary>
    Task<LayerDiffResult> WriteLayerAsync(FsIndex baseIndex, Stream output, LayerDiffOptions options, CancellationToken cancellationToken);

    /// <summary>The image's root directory entry as its layers give it (see <see cref="RootEntry"/>), or null when
    /// they have none or the source cannot tell.</summary>
    LayerEntry? Root => null;
}

/// <summary>Opens <see cref="IFinalImageSource"/>s; returns null when it cannot read this image (the next one is tried).</summary>
public interface IFinalImageSourceFactory
{
    Task<IFinalImageSource?> TryOpenAsync(EngineImage image, CancellationToken cancellationToken);
}
