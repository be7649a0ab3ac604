namespace LayerTool.Image.Layers;

/// <summary>How a path differs between two filesystems.</summary>
public enum FsChangeKind
{
    Added,
    Changed,
    Deleted,
}

/// <summary>One path that differs between two filesystems (for <c>layertool diff A B</c>).</summary>
/// <param name="Path">The path.</param>
/// <param name="Kind">Added, changed or deleted.</param>
/// <param name="Before">The entry in the first filesystem (null when added).</param>
/// <param name="After">The entry in the second filesystem (null when deleted).</param>
/// <param name="Detail">For a change, what changed.</param>
public sealed record FsChange(LayerPath Path, FsChangeKind Kind, FsIndexEntry? Before, FsIndexEntry? After, string? Detail);

/// <summary>The filesystem diff of two images.</summary>
public static class FsComparison
{
    /// <summary>
    /// Every added, changed or deleted path from <paramref name="from"/> to <paramref name="to"/>, in walk
    /// order. Changed means what <see cref="LayerVerifier.Describe"/> reports (content by hash, not times).
    /// A deleted directory's children are listed too.
    /// </summary>
    public static IReadOnlyList<FsChange> Compare(FsIndex from, FsIndex to)
    {
        var list = new List<FsChange>();
        foreach (var (a, b) in LayerVerifier.Join(from, to))
        {
            if (a is null) list.Add(new FsChange(b!.Path, FsChangeKind.Added, null, b, null));
            else if (b is null) list.Add(new FsChange(a.Path, FsChangeKind.Deleted, a, null, null));
            else if (LayerVerifier.Describe(a, b) is { } what) list.Add(new FsChange(a.Path, FsChangeKind.Changed, a, b, what));
        }
        return list;
    }
}

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
