using LayerTool.Image.Layers.Tar;

namespace LayerTool.Image.Layers;

/// <summary>
/// A forward-only sequence of tar entries with lazily readable content: a <see cref="LayerTarReader"/>,
/// or a wrapper around one (such as the init-path overlay).
/// </summary>
public interface ILayerEntrySource
{
    /// <summary>The next entry, or null at the end. Skips whatever content of the previous entry was not read.</summary>
    ValueTask<LayerEntry?> ReadNextAsync(CancellationToken cancellationToken);

    /// <summary>The current entry's content (regular files; empty otherwise), valid until the next call to <see cref="ReadNextAsync"/>.</summary>
    Stream Content { get; }
}
