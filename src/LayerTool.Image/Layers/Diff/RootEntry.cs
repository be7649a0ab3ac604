using LayerTool.Image.Layers.Tar;

namespace LayerTool.Image.Layers.Diff;

/// <summary>
/// The root directory's own entry (<c>./</c>) of an image, as its layers give it: a layer written in walk order
/// starts with it when it has one (<c>tar -C rootfs -cf layer.tar .</c> does; docker's own diffs do not), and a
/// later layer's wins, as for any directory. Only each layer's first header is read.
/// </summary>
public static class RootEntry
{
    /// <summary>The last layer's root entry among <paramref name="layers"/> (bottom first), or null when none has one.</summary>
    public static async Task<LayerEntry?> FindAsync(IEnumerable<Func<CancellationToken, Task<Stream>>> layers, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(layers);
        LayerEntry? root = null;
        foreach (var open in layers)
        {
            var reader = new LayerTarReader(await open(cancellationToken).ConfigureAwait(false));
            await using (reader.ConfigureAwait(false))
            {
                if (await reader.ReadNextAsync(cancellationToken).ConfigureAwait(false) is { Path.IsRoot: true, IsDirectory: true } first) root = first;
            }
        }
        return root;
    }

    /// <summary>
    /// The root entry a squash writes: the final image's own when it has one and the base does not already carry the
    /// same (onto scratch: whenever the image has one). An unknown base root (<paramref name="baseKnown"/> false) is
    /// taken as the same: nothing is written.
    /// </summary>
    public static LayerEntry? ToWrite(LayerEntry? finalRoot, bool ontoScratch, bool baseKnown, LayerEntry? baseRoot)
    {
        if (finalRoot is null) return null;
        if (ontoScratch) return finalRoot;
        if (!baseKnown) return null;
        return baseRoot is not null && baseRoot.SameMetadata(finalRoot) && baseRoot.ModificationTime == finalRoot.ModificationTime ? null : finalRoot;
    }
}
