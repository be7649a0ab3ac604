using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Index;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.Image.Reports;

/// <summary>One layer's numbers for <c>layertool layers</c>.</summary>
/// <param name="Index">0-based position in the stack (bottom first).</param>
/// <param name="TarSize">Bytes of the uncompressed layer tar.</param>
/// <param name="Files">Regular files the layer adds (hard links not counted).</param>
/// <param name="FileBytes">Content bytes of those files.</param>
/// <param name="WastedFiles">Of those, files that later layers replace or delete.</param>
/// <param name="WastedBytes">Their bytes: carried in the image but invisible in its filesystem. Each
/// file version counts once, in the layer that carries it, however often it is hidden again.</param>
public sealed record LayerUsage(int Index, long TarSize, long Files, long FileBytes, long WastedFiles, long WastedBytes);

/// <summary>Per-layer size and wasted bytes of a layer stack.</summary>
public static class LayerUsageAnalyzer
{
    /// <summary>Reads the layers (bottom first) once each and accounts every file that a later layer hides.</summary>
    public static async Task<IReadOnlyList<LayerUsage>> AnalyzeAsync(IReadOnlyList<Func<CancellationToken, Task<Stream>>> layers,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(layers);
        var wastedFiles = new long[layers.Count];
        var wastedBytes = new long[layers.Count];
        var files = new long[layers.Count];
        var bytes = new long[layers.Count];
        var sizes = new long[layers.Count];
        var builder = new FsIndexBuilder
        {
            Removed = r =>
            {
                if (r.Entry.Type != LayerEntryType.RegularFile || !r.LastLink || r.Layer < 1) return;
                wastedFiles[r.Layer - 1]++;
                wastedBytes[r.Layer - 1] += r.Entry.Size;
            },
            FileAdded = (node, layer, _) =>
            {
                files[layer - 1]++;
                bytes[layer - 1] += node.Entry.Size;
            },
        };
        for (var i = 0; i < layers.Count; i++)
        {
            var reader = new LayerTarReader(await layers[i](cancellationToken).ConfigureAwait(false));
            await using (reader.ConfigureAwait(false))
            {
                await builder.ApplyLayerAsync(reader, cancellationToken).ConfigureAwait(false);
                while (await reader.ReadNextAsync(cancellationToken).ConfigureAwait(false) is not null) { }
                sizes[i] = reader.Position;
            }
        }
        return [.. Enumerable.Range(0, layers.Count).Select(i => new LayerUsage(i, sizes[i], files[i], bytes[i], wastedFiles[i], wastedBytes[i]))];
    }
}
