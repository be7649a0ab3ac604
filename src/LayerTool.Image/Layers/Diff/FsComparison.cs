using LayerTool.Image.Layers.Index;

namespace LayerTool.Image.Layers.Diff;

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
