namespace LayerTool.Image;

/// <summary>
/// An image: a config (its exact bytes and the parsed document) and its layers, bottom first, one per
/// <c>rootfs.diff_ids</c> entry. Every source (docker-archive, OCI layout, the engine) and every sink
/// works with this one shape. Read-only.
/// </summary>
public interface IImage
{
    /// <summary>The config; <see cref="ImageConfig.Digest"/> is the image ID in the graph-driver store.</summary>
    ImageConfig Config { get; }

    /// <summary>The layers, bottom first; <c>Layers[i].DiffId == Config.DiffIds[i]</c>.</summary>
    IReadOnlyList<ILayer> Layers { get; }
}
