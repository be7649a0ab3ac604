namespace LayerTool.Docker.Images;

/// <summary>
/// The paths the engine's init layer puts into every container (moby daemon/initlayer): in the export
/// of a created container they show the engine's stubs and hide the image's own entries, so a reader of
/// an image's filesystem built on export must take them (and what lies below the directories) from the
/// image's layers instead.
/// </summary>
public static class InitLayerPaths
{
    /// <summary>The paths, relative to the root, in walk order.</summary>
    public static IReadOnlyList<string> All { get; } =
    [
        ".dockerenv",
        "dev/console",
        "dev/pts",
        "dev/shm",
        "etc/hostname",
        "etc/hosts",
        "etc/mtab",
        "etc/resolv.conf",
        "proc",
        "sys",
    ];

    /// <summary>True when <paramref name="path"/> (relative, no leading slash) is one of
    /// <see cref="All"/> or lies below one of them.</summary>
    public static bool Covers(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        foreach (var p in All)
        {
            if (path.Length == p.Length ? string.Equals(path, p, StringComparison.Ordinal)
                : path.Length > p.Length && path[p.Length] == '/' && path.StartsWith(p, StringComparison.Ordinal))
                return true;
        }
        return false;
    }
}
