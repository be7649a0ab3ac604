using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Index;

namespace LayerTool.Image.Squash;

/// <summary>
/// Base filesystem indexes on disk, keyed by the base's image ID, with the base's config beside them
/// (<c>DIR/&lt;hex&gt;.idx</c>, <c>DIR/&lt;hex&gt;.config.json</c>): the next squash onto the same base reads
/// only the final image. Files are written to a temp name and renamed, so a crash leaves no half entry; a
/// damaged entry (the serializer checks a SHA-256 trailer) is dropped and rebuilt.
/// </summary>
public sealed class BaseIndexCache
{
    private readonly string _directory;

    /// <param name="directory">The cache directory (e.g. <c>~/.cache/layertool/index</c>); created when needed.</param>
    public BaseIndexCache(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        _directory = directory;
    }

    public string Directory => _directory;

    /// <summary>The cached index and config of image <paramref name="imageId"/>, or null.</summary>
    public (FsIndex Index, ImageConfig Config)? TryGet(string imageId)
    {
        var (idx, config) = Paths(imageId);
        if (!File.Exists(idx) || !File.Exists(config)) return null;
        try
        {
            // Opened on disk (checksum checked), walked as a stream by the squash: never loaded whole.
            var index = FsIndexSerializer.OpenFile(idx);
            return (index, ImageConfig.Parse(File.ReadAllBytes(config), config));
        }
        catch (Exception e) when (e is ImageFormatException or IOException or EndOfStreamException or InvalidDataException)
        {
            TryDelete(idx);
            TryDelete(config);
            return null;
        }
    }

    /// <summary>Stores an index and config under <paramref name="imageId"/>. A failure to write is not an error (the cache is an optimisation).</summary>
    public bool TryPut(string imageId, FsIndex index, ImageConfig config)
    {
        ArgumentNullException.ThrowIfNull(index);
        ArgumentNullException.ThrowIfNull(config);
        var (idx, configPath) = Paths(imageId);
        var tmp = $".{Guid.NewGuid():N}.tmp";
        try
        {
            System.IO.Directory.CreateDirectory(_directory);
            FsIndexSerializer.WriteFile(index, idx + tmp);
            File.WriteAllBytes(configPath + tmp, config.Bytes.ToArray());
            File.Move(configPath + tmp, configPath, overwrite: true);
            File.Move(idx + tmp, idx, overwrite: true);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(idx + tmp);
            TryDelete(configPath + tmp);
            return false;
        }
    }

    private (string Index, string Config) Paths(string imageId)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(imageId);
        var hex = imageId.StartsWith("sha256:", StringComparison.Ordinal) ? imageId["sha256:".Length..] : imageId;
        if (hex.Length == 0 || !hex.All(char.IsAsciiHexDigitLower))
            throw new ArgumentException($"not an image ID: '{imageId}'", nameof(imageId));
        return (Path.Combine(_directory, hex + ".idx"), Path.Combine(_directory, hex + ".config.json"));
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
