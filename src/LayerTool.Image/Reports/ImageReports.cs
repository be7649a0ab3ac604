using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Layers.Index;

namespace LayerTool.Image.Reports;

/// <summary>One layer of <c>layertool layers</c>.</summary>
/// <param name="Index">1-based position, bottom first.</param>
/// <param name="DiffId">The layer's diff ID.</param>
/// <param name="Size">Bytes of the uncompressed layer tar.</param>
/// <param name="CreatedBy">The instruction that made it (its history entry's <c>created_by</c>), when known.</param>
/// <param name="Files">Regular files the layer adds.</param>
/// <param name="FileBytes">Their content bytes.</param>
/// <param name="WastedFiles">Of those, files later layers replace or delete.</param>
/// <param name="WastedBytes">Their bytes, counted once.</param>
public sealed record LayerReport(int Index, string DiffId, long Size, string? CreatedBy, long Files, long FileBytes, long WastedFiles, long WastedBytes);

/// <summary>The looks at images behind <c>layertool diff</c> and <c>layertool layers</c>, whatever their source.</summary>
public static class ImageReports
{
    /// <summary>The merged filesystem of an image (its layers applied in order), on disk: memory stays flat however many paths.</summary>
    public static Task<FsIndex> IndexAsync(IImage image, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(image);
        return FsIndex.FromLayersOnDiskAsync([.. image.Layers.Select(Opener)], null, cancellationToken);
    }

    /// <summary>Added, changed and deleted paths from <paramref name="from"/>'s filesystem to <paramref name="to"/>'s.</summary>
    public static async Task<IReadOnlyList<FsChange>> DiffAsync(IImage from, IImage to, CancellationToken cancellationToken)
    {
        using var a = await IndexAsync(from, cancellationToken).ConfigureAwait(false);
        using var b = await IndexAsync(to, cancellationToken).ConfigureAwait(false);
        return FsComparison.Compare(a, b);
    }

    /// <summary>Per layer: size, the instruction that made it and the bytes later layers hide.</summary>
    public static async Task<IReadOnlyList<LayerReport>> LayersAsync(IImage image, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(image);
        var usage = await LayerUsageAnalyzer.AnalyzeAsync([.. image.Layers.Select(Opener)], cancellationToken).ConfigureAwait(false);
        var createdBy = image.Config.History.Where(h => !h.EmptyLayer).Select(h => h.CreatedBy).ToList();
        // Without a history entry per layer (history is optional), the instructions are not known.
        var aligned = createdBy.Count == image.Layers.Count;
        return [.. usage.Select(u => new LayerReport(
            u.Index + 1,
            image.Layers[u.Index].DiffId.ToString(),
            u.TarSize,
            aligned ? createdBy[u.Index] : null,
            u.Files,
            u.FileBytes,
            u.WastedFiles,
            u.WastedBytes))];
    }

    private static Func<CancellationToken, Task<Stream>> Opener(ILayer layer) => ct => Task.FromResult(layer.Open(ct));
}
