using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace LayerTool.Build.Plans.Run;

/// <summary>What the last run made of one plan image.</summary>
/// <param name="Inputs">The input hash it was built from (<c>sha256:...</c>).</param>
/// <param name="ImageId">The image ID.</param>
/// <param name="Pushed">The pushed reference <c>repo@sha256:...</c> (registry outputs and registry hand-offs); null when none.</param>
public sealed record PlanStateEntry(string Inputs, string ImageId, string? Pushed);

/// <summary>
/// A plan's run record: for each image, the input hash and the image it was built into. The authority for "up to date"
/// is the image itself (it carries its input hash as the label <see cref="InputsLabel"/>); this record adds what a label
/// cannot say: which image an untagged plan image is, and what was pushed where. It lives in the user's cache
/// (<c>$XDG_CACHE_HOME/layertool/plans/&lt;hash of the plan's path&gt;.json</c>), not next to the plan, where it would
/// change the build context of an image whose context holds the plan file.
/// </summary>
public sealed class PlanState
{
    /// <summary>The label that carries an image's input hash.</summary>
    public const string InputsLabel = "layertool.plan.inputs";

    /// <summary>The label that names the plan image an image was built for.</summary>
    public const string ImageLabel = "layertool.plan.image";

    private readonly Dictionary<string, PlanStateEntry> _entries;
    private readonly Lock _gate = new();

    private PlanState(string path, Dictionary<string, PlanStateEntry> entries)
    {
        Path = path;
        _entries = entries;
    }

    /// <summary>The record's file.</summary>
    public string Path { get; }

    /// <summary>Where the record of the plan at <paramref name="planPath"/> lives under <paramref name="cacheRoot"/>.</summary>
    public static string PathFor(string cacheRoot, string planPath)
    {
        ArgumentNullException.ThrowIfNull(cacheRoot);
        ArgumentNullException.ThrowIfNull(planPath);
        var key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(System.IO.Path.GetFullPath(planPath))))[..16];
        return System.IO.Path.Combine(cacheRoot, key + ".json");
    }

    /// <summary>Reads the record (an unreadable or missing one is an empty record: everything gets checked against the engine).</summary>
    public static PlanState Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        try
        {
            if (File.Exists(path))
            {
                var read = JsonSerializer.Deserialize(File.ReadAllBytes(path), PlanStateJson.Default.DictionaryStringPlanStateEntry);
                if (read is not null) return new PlanState(path, new Dictionary<string, PlanStateEntry>(read, StringComparer.Ordinal));
            }
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            // A damaged record only costs checks.
        }
        return new PlanState(path, new Dictionary<string, PlanStateEntry>(StringComparer.Ordinal));
    }

    public PlanStateEntry? Get(string image)
    {
        lock (_gate) return _entries.GetValueOrDefault(image);
    }

    public void Set(string image, PlanStateEntry entry)
    {
        lock (_gate) _entries[image] = entry;
    }

    /// <summary>Writes the record (to a temp file, then renamed into place).</summary>
    public void Save()
    {
        byte[] bytes;
        lock (_gate) bytes = JsonSerializer.SerializeToUtf8Bytes(new SortedDictionary<string, PlanStateEntry>(_entries, StringComparer.Ordinal), PlanStateJson.Default.SortedDictionaryStringPlanStateEntry);
        var directory = System.IO.Path.GetDirectoryName(Path)!;
        Directory.CreateDirectory(directory);
        var temp = Path + ".tmp-" + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        File.WriteAllBytes(temp, bytes);
        File.Move(temp, Path, overwrite: true);
    }
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(Dictionary<string, PlanStateEntry>))]
[JsonSerializable(typeof(SortedDictionary<string, PlanStateEntry>))]
internal sealed partial class PlanStateJson : JsonSerializerContext;
