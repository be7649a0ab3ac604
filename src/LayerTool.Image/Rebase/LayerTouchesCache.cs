namespace LayerTool.Image.Rebase;

/// <summary>
/// The file lists (<see cref="LayerTouches"/>) of layers already read, on disk by diff ID (<c>DIR/&lt;hex&gt;.touches</c>): a
/// layer's tar never changes for its diff ID, so a rebase that meets the same own layer again (the next patch of the
/// base, or another tag of the app) does not read it again. Written to a temp name and renamed; an entry that does not
/// read back is dropped. A failure to read or write is a cache miss, never an error.
/// </summary>
public sealed class LayerTouchesCache
{
    private readonly string _directory;

    /// <param name="directory">The directory (e.g. <c>~/.cache/layertool/index/touches</c>); created when needed.</param>
    public LayerTouchesCache(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        _directory = directory;
    }

    /// <summary>The file list of the layer <paramref name="diffId"/>, or null.</summary>
    public LayerTouches? TryGet(Digest diffId)
    {
        var path = PathOf(diffId);
        try
        {
            if (!File.Exists(path)) return null;
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
            var touches = LayerTouches.ReadFrom(file);
            return file.Position == file.Length ? touches : throw new InvalidDataException("trailing bytes");
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ImageFormatException or UnauthorizedAccessException)
        {
            TryDelete(path);
            return null;
        }
    }

    /// <summary>Stores the file list of the layer <paramref name="diffId"/>; false when it could not be written.</summary>
    public bool TryPut(Digest diffId, LayerTouches touches)
    {
        ArgumentNullException.ThrowIfNull(touches);
        var path = PathOf(diffId);
        var temp = $"{path}.{Guid.NewGuid():N}.tmp";
        try
        {
            Directory.CreateDirectory(_directory);
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                touches.WriteTo(file);
            }

            File.Move(temp, path, overwrite: true);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            return false;
        }
    }

    private string PathOf(Digest diffId) => Path.Combine(_directory, $"{diffId.Algorithm}-{diffId.Hex}.touches");

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Only a cache.
        }
    }
}
