using LayerTool.Image.Layers.Diff;

namespace LayerTool.Image.Layers;

/// <summary>
/// Optional for an <see cref="ILayerEntrySource"/> that already knows the SHA-256 of the current regular
/// file's content without reading it (the overlay2 fast path: a file no layer above the base touched is
/// the base's own file, whose hash the base index holds). <see cref="LayerDiff"/> then compares by that
/// hash and reads the content only if it must write the file.
/// </summary>
public interface IContentHashHint
{
    /// <summary>The current entry's content hash when known for sure; null to read the content.</summary>
    byte[]? CurrentContentHash { get; }
}
