namespace LayerTool.Image.Layers;

/// <summary>
/// Base-filesystem indexes on disk, keyed by image ID, so the next squash onto the same base skips
/// reading it. A damaged or unreadable entry is deleted and reported as a miss.
/// </summary>
/// <param name="directory">Where the indexes live (e.g. <c>~/.cache/layertool/fs-index</c>; injected, never read from the environment here).</param>
public sealed class FsIndexCache(string directory)
{
    /// <summary>The cached index of <paramref name="imageId"/>, or null.</summary>
    public FsIndex? TryLoad(string imageId)
    {
        var path = PathFor(imageId);
        if (!File.Exists(path)) return null;
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 65536);
            return FsIndexSerializer.Read(file);
        }
        catch (Exception e) when (e is ImageFormatException or IOException or UnauthorizedAccessException)
        {
            TryDelete(path);
            return null;
        }
    }

    /// <summary>Stores <paramref name="index"/> for <paramref name="imageId"/> (written to a temp name, then renamed into place).</summary>
    public void Store(string imageId, FsIndex index)
    {
        ArgumentNullException.ThrowIfNull(index);
        Directory.CreateDirectory(directory);
        var path = PathFor(imageId);
        var temp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        try
        {
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 65536))
                FsIndexSerializer.Write(index, file);
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            TryDelete(temp);
        }
    }

    private string PathFor(string imageId)
    {
        ArgumentException.ThrowIfNullOrEmpty(imageId);
        var name = imageId.Replace(':', '-');
        if (name.Any(c => !char.IsAsciiLetterOrDigit(c) && c != '-' && c != '_' && c != '.') || name.StartsWith('.'))
            throw new ArgumentException($"'{imageId}' is not an image ID", nameof(imageId));
        return Path.Combine(directory, name + ".fsidx");
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
