using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Index;

namespace LayerTool.Image.Rebase;

/// <summary>The names a rebase reports its inputs by.</summary>
/// <param name="Image">The image as the user named it.</param>
/// <param name="OldBase">The old base as named or found.</param>
/// <param name="OldBaseFoundBy"><c>--from</c>, <c>label</c>, <c>annotation</c> or <c>prefix</c>.</param>
/// <param name="NewBase">The new base as the user named it.</param>
public sealed record RebaseNames(string Image, string OldBase, string OldBaseFoundBy, string NewBase);

/// <summary>A planned rebase: the result (not yet delivered anywhere) and its report.</summary>
public sealed record RebasePlan(RebasedImage Result, RebaseReport Report);

/// <summary>
/// The whole pure part of a rebase, whatever the images' source: the layers and config of the result
/// (<see cref="Rebaser"/>) and the report (<see cref="FileConflicts"/> over the two bases' filesystems and the
/// image's own layers, <see cref="BaseConfigDiff"/>). The caller delivers the result, or not (<c>--strict</c>).
/// </summary>
public static class RebaseCheck
{
    /// <param name="request">The images, the new base's label values and the config keys to take.</param>
    /// <param name="names">How to name the inputs in the report.</param>
    /// <param name="oldBaseIndex">The old base's filesystem (see <see cref="FsIndex.FromLayersOnDiskAsync"/>).</param>
    /// <param name="newBaseIndex">The new base's filesystem.</param>
    /// <param name="ownLayers">The image's own layers to read the headers of; the result's own layers when null.</param>
    /// <param name="cancellationToken">Cancels the work.</param>
    public static async Task<RebasePlan> PlanAsync(RebaseRequest request, RebaseNames names, FsIndex oldBaseIndex, FsIndex newBaseIndex,
        IReadOnlyList<ILayer>? ownLayers, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(names);
        var result = Rebaser.Rebase(request);
        var files = await FileConflicts.FindAsync(oldBaseIndex, newBaseIndex, ownLayers ?? result.OwnLayers, cancellationToken).ConfigureAwait(false);
        return new RebasePlan(result, new RebaseReport(names.Image, names.OldBase, names.OldBaseFoundBy, names.NewBase, files, result.ConfigDifferences));
    }

    /// <summary>As <see cref="PlanAsync(RebaseRequest, RebaseNames, FsIndex, FsIndex, IReadOnlyList{ILayer}, CancellationToken)"/>, the own
    /// layers' file lists coming from <paramref name="readOwnLayers"/> (called only when the bases' filesystems differ).</summary>
    public static async Task<RebasePlan> PlanWithFileListsAsync(RebaseRequest request, RebaseNames names, FsIndex oldBaseIndex, FsIndex newBaseIndex,
        Func<IReadOnlyList<ILayer>, CancellationToken, Task<IReadOnlyList<LayerTouches>>> readOwnLayers, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(names);
        ArgumentNullException.ThrowIfNull(readOwnLayers);
        var result = Rebaser.Rebase(request);
        var files = await FileConflicts.FindAsync(oldBaseIndex, newBaseIndex, ct => readOwnLayers(result.OwnLayers, ct), cancellationToken).ConfigureAwait(false);
        return new RebasePlan(result, new RebaseReport(names.Image, names.OldBase, names.OldBaseFoundBy, names.NewBase, files, result.ConfigDifferences));
    }

    /// <summary>The filesystem of an image's layers, merged into an on-disk index.</summary>
    public static Task<FsIndex> IndexAsync(IImage image, string? tempDirectory, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(image);
        return FsIndex.FromLayersOnDiskAsync([.. image.Layers.Select(l => (Func<CancellationToken, Task<Stream>>)(ct => Task.FromResult(l.Open(ct))))],
            tempDirectory, cancellationToken);
    }
}

/// <summary>What a rebase did.</summary>
/// <param name="Report">The conflicts found.</param>
/// <param name="ImageId">The result's image ID; null when nothing was delivered (strict mode with conflicts).</param>
/// <param name="Tags">The tags given to the result.</param>
/// <param name="Output">Where the result was written, if anywhere.</param>
/// <param name="BytesSent">Bytes sent to the engine to load the result (0 when not loaded).</param>
/// <param name="LoadedWith">How the engine got the result: <c>config+manifest</c>, <c>own layers</c>, or null when not loaded.</param>
/// <param name="OwnLayers">How many of the image's own layers were moved.</param>
public sealed record RebaseOutcome(RebaseReport Report, string? ImageId, IReadOnlyList<string> Tags, string? Output, long BytesSent, string? LoadedWith,
    int OwnLayers)
{
    /// <summary>Where the image's config and own layers were read from (the engine: the overlay2 layer store, or a save, and why); null elsewhere.</summary>
    public string? ReadWith { get; init; }

    /// <summary>True when the result was tagged or written.</summary>
    public bool Delivered => ImageId is not null;
}
