using LayerTool.Docker.Images;

namespace LayerTool.Docker.Overlay2;

/// <summary>Where an image's layers live in the engine's overlay2 storage: one diff directory per layer.</summary>
/// <param name="LayerDirs">The diff directories, bottom first, one per diffID.</param>
public sealed record Overlay2Layout(IReadOnlyList<string> LayerDirs)
{
    /// <summary>
    /// The layer directories of <paramref name="image"/> from its inspect's <c>GraphDriver</c>: <c>UpperDir</c>
    /// is the top layer, <c>LowerDir</c> the others, colon-separated, top first. Null, with the reason, when
    /// the driver is not overlay2, the data is incomplete, the count does not match the layers, or a
    /// directory cannot be read here (a remote engine, no root).
    /// </summary>
    public static Overlay2Layout? TryResolve(EngineImage image, out string? reason)
    {
        ArgumentNullException.ThrowIfNull(image);
        reason = null;
        if (!OperatingSystem.IsLinux())
        {
            reason = "not on Linux";
            return null;
        }
        if (image.GraphDriver is not { Name: "overlay2" } driver)
        {
            reason = $"the engine's storage driver is {image.GraphDriver?.Name ?? "unknown"}, not overlay2";
            return null;
        }
        if (!driver.Data.TryGetValue("UpperDir", out var upper) || string.IsNullOrEmpty(upper))
        {
            reason = "the image's GraphDriver data has no UpperDir";
            return null;
        }
        var topFirst = new List<string> { upper };
        if (driver.Data.TryGetValue("LowerDir", out var lower) && !string.IsNullOrEmpty(lower))
            topFirst.AddRange(lower.Split(':'));
        if (topFirst.Count != image.DiffIds.Count)
        {
            reason = $"{topFirst.Count} layer directories for {image.DiffIds.Count} layers";
            return null;
        }
        foreach (var dir in topFirst)
        {
            if (!dir.StartsWith('/') || !dir.EndsWith("/diff", StringComparison.Ordinal))
            {
                reason = $"unexpected layer directory '{dir}'";
                return null;
            }
            if (!Directory.Exists(dir))
            {
                reason = $"layer directory {dir} is not readable here (a remote engine, or not root)";
                return null;
            }
        }
        try
        {
            _ = Directory.EnumerateFileSystemEntries(topFirst[0]).Take(1).Count();
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            reason = $"layer directory {topFirst[0]} is not readable ({e.Message})";
            return null;
        }
        topFirst.Reverse();
        return new Overlay2Layout(topFirst);
    }
}
