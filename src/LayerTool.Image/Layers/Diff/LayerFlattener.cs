using LayerTool.Image.Layers.Index;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.Image.Layers.Diff;

/// <summary>
/// Merges a stack of layer tars into one flattened tar in walk order, like a <c>docker export</c> of the
/// image: what <see cref="LayerDiff"/> needs when an image comes from an archive instead of an engine.
/// </summary>
public static class LayerFlattener
{
    /// <summary>
    /// Writes the merged filesystem of <paramref name="layers"/> (bottom first) to <paramref name="output"/>.
    /// Two passes: the first indexes the stack, the second copies the content of the files that survive
    /// into a temp spool; then the tar is written in walk order from the index and the spool.
    /// </summary>
    /// <returns>The merged filesystem's index.</returns>
    public static async Task<FsIndex> FlattenAsync(IReadOnlyList<Func<CancellationToken, Task<Stream>>> layers, Stream output,
        CancellationToken cancellationToken, string? tempDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(layers);
        ArgumentNullException.ThrowIfNull(output);
        var origins = new Dictionary<long, (int Layer, long Ordinal)>();
        var builder = new FsIndexBuilder { FileAdded = (node, layer, ordinal) => origins[node.Inode] = (layer, ordinal) };
        foreach (var open in layers)
        {
            var reader = new LayerTarReader(await open(cancellationToken).ConfigureAwait(false));
            await using (reader.ConfigureAwait(false))
                await builder.ApplyLayerAsync(reader, cancellationToken).ConfigureAwait(false);
        }
        var index = builder.Build();

        // Which entry of which layer holds each surviving file's content.
        var wanted = new Dictionary<(int Layer, long Ordinal), long>();
        foreach (var (node, first) in index.Nodes())
        {
            if (first is null && node.Entry.Type == LayerEntryType.RegularFile && node.Entry.Size > 0)
                wanted[origins[node.Inode]] = node.Inode;
        }

        var spoolPath = LayerDiff.TempFile(tempDirectory);
        var spool = new FileStream(spoolPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 81920,
            FileOptions.DeleteOnClose | FileOptions.Asynchronous);
        await using (spool.ConfigureAwait(false))
        {
            var offsets = new Dictionary<long, long>();
            for (var i = 0; i < layers.Count; i++)
            {
                var reader = new LayerTarReader(await layers[i](cancellationToken).ConfigureAwait(false));
                await using (reader.ConfigureAwait(false))
                {
                    long ordinal = -1;
                    while (await reader.ReadNextAsync(cancellationToken).ConfigureAwait(false) is { } _)
                    {
                        ordinal++;
                        if (!wanted.TryGetValue((i + 1, ordinal), out var inode)) continue;
                        offsets[inode] = spool.Position;
                        await reader.Content.CopyToAsync(spool, cancellationToken).ConfigureAwait(false);
                    }
                }
            }
            await spool.FlushAsync(cancellationToken).ConfigureAwait(false);

            var writer = new LayerTarWriter(output, leaveOpen: true);
            await using (writer.ConfigureAwait(false))
            {
                foreach (var (node, first) in index.Nodes())
                {
                    var entry = node.Entry;
                    if (first is not null)
                    {
                        await writer.WriteEntryAsync(entry.AsHardLinkTo(first), null, cancellationToken).ConfigureAwait(false);
                    }
                    else if (entry.Type == LayerEntryType.RegularFile && entry.Size > 0)
                    {
                        spool.Position = offsets[node.Inode];
                        await writer.WriteEntryAsync(entry, spool, cancellationToken).ConfigureAwait(false);
                    }
                    else
                    {
                        await writer.WriteEntryAsync(entry, null, cancellationToken).ConfigureAwait(false);
                    }
                }
                await writer.FinishAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        return index;
    }
}
