using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace LayerTool.Build.Cache;

/// <summary>
/// The local build cache: a map from a step's key (parent image, canonical instruction, what the step sees,
/// source content) to the image the step produced, kept as one JSON file under the user's cache directory.
/// A hit is only trusted after the engine confirms the image still exists (the executor checks).
/// </summary>
public sealed class BuildCache
{
    private readonly string? _file;
    private readonly Dictionary<string, string> _entries;
    private readonly Lock _gate = new();
    private bool _dirty;

    private BuildCache(string? file, Dictionary<string, string> entries)
    {
        _file = file;
        _entries = entries;
    }

    /// <summary>A cache that remembers nothing (<c>--no-cache</c>, or no cache directory).</summary>
    public static BuildCache Disabled { get; } = new(null, []);

    public bool Enabled => _file is not null;

    /// <summary>Loads the index from <paramref name="directory"/> (a missing or unreadable index is empty).</summary>
    public static BuildCache Open(string directory)
    {
        Directory.CreateDirectory(directory);
        var file = Path.Combine(directory, "build-cache.json");
        var entries = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            if (File.Exists(file))
                entries = JsonSerializer.Deserialize(File.ReadAllText(file), CacheJson.Default.DictionaryStringString) ?? entries;
        }
        catch (JsonException)
        {
            // A damaged index is only a cold cache.
        }
        return new BuildCache(file, entries);
    }

    /// <summary>The key of a step: SHA-256 over its parts, each length-prefixed.</summary>
    public static string Key(params string?[] parts)
    {
        var sb = new StringBuilder();
        foreach (var p in parts) sb.Append(p?.Length ?? -1).Append(':').Append(p).Append('\n');
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
    }

    public string? Lookup(string key)
    {
        if (!Enabled) return null;
        lock (_gate) return _entries.GetValueOrDefault(key);
    }

    public void Store(string key, string imageId)
    {
        if (!Enabled) return;
        lock (_gate)
        {
            _entries[key] = imageId;
            _dirty = true;
        }
    }

    public void Forget(string key)
    {
        if (!Enabled) return;
        lock (_gate) _dirty |= _entries.Remove(key);
    }

    /// <summary>Writes the index (atomically: temp file and rename), merging entries another build saved meanwhile.</summary>
    public void Save()
    {
        if (_file is null) return;
        lock (_gate)
        {
            if (!_dirty) return;
            var merged = new Dictionary<string, string>(StringComparer.Ordinal);
            try
            {
                if (File.Exists(_file))
                    merged = JsonSerializer.Deserialize(File.ReadAllText(_file), CacheJson.Default.DictionaryStringString) ?? merged;
            }
            catch (JsonException)
            {
                merged.Clear();
            }
            foreach (var (k, v) in _entries) merged[k] = v;
            var tmp = _file + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp";
            File.WriteAllText(tmp, JsonSerializer.Serialize(merged, CacheJson.Default.DictionaryStringString));
            File.Move(tmp, _file, overwrite: true);
            _dirty = false;
        }
    }
}

/// <summary>The index file's JSON, by generated code (no reflection: the tool also runs as Native AOT).</summary>
[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class CacheJson : System.Text.Json.Serialization.JsonSerializerContext;
