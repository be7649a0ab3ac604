using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Layers.Index;

namespace LayerTool.Image.Rebase;

/// <summary>How the image's own layers meet a path the new base changes.</summary>
public enum FileConflictKind
{
    /// <summary>An own layer writes the path: the image keeps its own version, the new base's does not show.</summary>
    Overwritten,

    /// <summary>An own layer whites out the path (or a directory above it): the new base's version does not show.</summary>
    Deleted,

    /// <summary>An own layer makes a directory above the path opaque: the new base's version does not show.</summary>
    Opaque,

    /// <summary>Not a hidden patch, but worth knowing: the image created a path that the new base now adds too
    /// (the image depended on it being absent; its own version wins).</summary>
    Info,
}

/// <summary>One path the new base changes that the image's own layers hide (or, for <see cref="FileConflictKind.Info"/>, meet).</summary>
/// <param name="Path">The path (no leading slash).</param>
/// <param name="Kind">How the image's layers meet it.</param>
/// <param name="BaseChange">What the new base does to it, compared with the old base.</param>
/// <param name="Layer">Which own layer (1 = the lowest above the base) decides what shows at the path.</param>
/// <param name="Detail">For a changed path, what changed (mode, content, ...).</param>
public sealed record FileConflict(string Path, FileConflictKind Kind, FsChangeKind BaseChange, int Layer, string? Detail);

/// <summary>
/// The conflict check of a rebase: every path the new base changes, adds or removes (the filesystem diff of
/// the old and the new base) against what the image's own layers touch. A change under a path an own layer
/// writes, whites out or hides under an opaque directory is a patch that will not take effect in the
/// rebased image. The topmost own layer that touches the path (or a directory above it) decides.
/// </summary>
public static class FileConflicts
{
    /// <summary>Compares the two bases' filesystems and reads the own layers' headers, bottom first.</summary>
    public static Task<IReadOnlyList<FileConflict>> FindAsync(FsIndex oldBase, FsIndex newBase, IReadOnlyList<ILayer> ownLayers,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ownLayers);
        return FindAsync(oldBase, newBase, async ct =>
        {
            var touches = new List<LayerTouches>(ownLayers.Count);
            foreach (var layer in ownLayers)
            {
                ct.ThrowIfCancellationRequested();
                touches.Add(await LayerTouches.ReadAsync(layer.Open(ct), ct).ConfigureAwait(false));
            }

            return touches;
        }, cancellationToken);
    }

    /// <summary>
    /// Compares the two bases' filesystems; only when they differ, asks <paramref name="readOwnLayers"/> for the own
    /// layers' file lists (bottom first), so identical bases cost no read of the image's layers.
    /// </summary>
    public static async Task<IReadOnlyList<FileConflict>> FindAsync(FsIndex oldBase, FsIndex newBase,
        Func<CancellationToken, Task<IReadOnlyList<LayerTouches>>> readOwnLayers, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(oldBase);
        ArgumentNullException.ThrowIfNull(newBase);
        ArgumentNullException.ThrowIfNull(readOwnLayers);
        var changes = FsComparison.Compare(oldBase, newBase);
        if (changes.Count == 0) return [];
        return Find(changes, await readOwnLayers(cancellationToken).ConfigureAwait(false));
    }

    /// <summary>The conflicts of <paramref name="changes"/> (old base → new base) with <paramref name="ownLayers"/> (bottom first), in walk order.</summary>
    public static IReadOnlyList<FileConflict> Find(IReadOnlyList<FsChange> changes, IReadOnlyList<LayerTouches> ownLayers)
    {
        ArgumentNullException.ThrowIfNull(changes);
        ArgumentNullException.ThrowIfNull(ownLayers);
        var list = new List<FileConflict>();
        foreach (var change in changes)
        {
            if (Classify(change, ownLayers) is { } conflict) list.Add(conflict);
        }

        return list;
    }

    private static FileConflict? Classify(FsChange change, IReadOnlyList<LayerTouches> layers)
    {
        var path = change.Path;
        var ancestors = path.Ancestors().ToList();
        for (var i = layers.Count - 1; i >= 0; i--)
        {
            var layer = layers[i];
            if (layer.Writes.TryGetValue(path, out var written))
            {
                return OnWrite(change, written, i + 1);
            }

            if (layer.Whiteouts.Contains(path) || ancestors.Any(layer.Whiteouts.Contains))
            {
                return change.Kind == FsChangeKind.Deleted ? null : Conflict(change, FileConflictKind.Deleted, i + 1);
            }

            if (ancestors.Any(layer.OpaqueDirectories.Contains))
            {
                return change.Kind == FsChangeKind.Deleted ? null : Conflict(change, FileConflictKind.Opaque, i + 1);
            }

            if (ancestors.Any(a => layer.Writes.TryGetValue(a, out var above) && above.Type != LayerEntryType.Directory))
            {
                // The layer puts a file (or symlink) where the base has a directory above the path.
                return change.Kind == FsChangeKind.Deleted ? null : Conflict(change, FileConflictKind.Overwritten, i + 1);
            }
        }

        return null;
    }

    private static FileConflict? OnWrite(FsChange change, LayerEntry written, int layer)
    {
        var bothDirectories = written.Type == LayerEntryType.Directory && (change.After ?? change.Before)?.Entry.IsDirectory == true;
        switch (change.Kind)
        {
            case FsChangeKind.Added:
                // A directory both create merges; a file the image created that the new base now adds too is information.
                return bothDirectories ? null : Conflict(change, FileConflictKind.Info, layer);
            case FsChangeKind.Changed:
                // A directory entry over a directory keeps the children: only its own metadata is the image's.
                if (bothDirectories && change.After is { } after && SameDirectoryMetadata(written, after.Entry)) return null;
                return Conflict(change, FileConflictKind.Overwritten, layer);
            default:
                // The new base removes the path; the image's layer puts its own back.
                return Conflict(change, FileConflictKind.Overwritten, layer);
        }
    }

    private static bool SameDirectoryMetadata(LayerEntry a, LayerEntry b) =>
        a.Mode == b.Mode && a.Uid == b.Uid && a.Gid == b.Gid && LayerEntry.SameXattrs(a.Xattrs, b.Xattrs);

    private static FileConflict Conflict(FsChange change, FileConflictKind kind, int layer) =>
        new(change.Path.ToString(), kind, change.Kind, layer, change.Detail);
}
