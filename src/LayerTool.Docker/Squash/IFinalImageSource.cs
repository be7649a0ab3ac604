using LayerTool.Docker.Images;
using LayerTool.Image;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Layers.Index;

namespace LayerTool.Docker.Squash;

/// <summary>
/// An engine image opened for a squash: its exact config and its filesystem, written as the layer that turns a
/// base index into it. Two implementations, chosen by <see cref="EngineImages.OpenFinal"/>:
/// <see cref="Overlay2.Overlay2Squash"/> reads the overlay2 layer directories next to the engine (the fast path,
/// docs/design/fast-path.md); <see cref="ExportImageSource"/> works against any engine through the API.
/// </summary>
public interface IFinalImageSource : IDisposable
{
    /// <summary>The final image: its config (kept by the squash) and, where the source has them, its layers.</summary>
    IImage Image { get; }

    /// <summary>Whether the layer can be written twice cheaply (a measuring or hashing pass, then the real one), which
    /// lets the engine load it while it is written (<see cref="EngineLoader"/>).</summary>
    bool Rereadable { get; }

    /// <summary>The engine's own temp directory when this process can see it (for a load through a pipe), else null.</summary>
    string? EngineTempDirectory { get; }

    /// <summary>Writes the layer that turns <paramref name="baseIndex"/> into the image's filesystem (see <see cref="LayerDiff"/>).</summary>
    Task<LayerDiffResult> WriteLayerAsync(FsIndex baseIndex, Stream output, LayerDiffOptions options, CancellationToken cancellationToken);

    /// <summary>The image's root directory entry as its layers give it (see <see cref="RootEntry"/>), or null when
    /// they have none or the source cannot tell.</summary>
    Task<LayerEntry?> FindRootAsync(CancellationToken cancellationToken);

    /// <summary>The base's index and config read by the same means (the base's layer directories), or null when this
    /// source cannot: the base is then indexed from its save.</summary>
    Task<(FsIndex Index, ImageConfig Config)?> TryIndexBaseAsync(EngineImage baseImage, string? tempDirectory, CancellationToken cancellationToken);
}
