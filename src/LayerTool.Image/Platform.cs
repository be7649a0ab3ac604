using System.Text.Json.Nodes;

namespace LayerTool.Image;

/// <summary>
/// The platform of an image in an index
/// (https://github.com/opencontainers/image-spec/blob/main/image-index.md#image-index-property-descriptions).
/// </summary>
public sealed record Platform(string Architecture, string Os)
{
    /// <summary>linux/amd64, the platform chosen from a multi-platform index unless told otherwise.</summary>
    public static Platform LinuxAmd64 { get; } = new("amd64", "linux");

    public string? Variant { get; init; }

    public string? OsVersion { get; init; }

    public IReadOnlyList<string>? OsFeatures { get; init; }

    /// <summary>Whether this platform matches <paramref name="wanted"/>: same os and architecture, and the same
    /// variant when <paramref name="wanted"/> names one.</summary>
    public bool Satisfies(Platform wanted)
    {
        ArgumentNullException.ThrowIfNull(wanted);
        return Os == wanted.Os && Architecture == wanted.Architecture
            && (wanted.Variant is null || wanted.Variant == Variant);
    }

    public override string ToString() => Variant is null ? $"{Os}/{Architecture}" : $"{Os}/{Architecture}/{Variant}";

    internal static Platform FromJson(JsonObject json, string where) => new(
        Json.RequiredString(json, "architecture", where),
        Json.RequiredString(json, "os", where))
    {
        Variant = Json.OptionalString(json, "variant", where),
        OsVersion = Json.OptionalString(json, "os.version", where),
        OsFeatures = Json.OptionalStringList(json, "os.features", where),
    };

    internal JsonObject ToJson()
    {
        var json = new JsonObject { ["architecture"] = Architecture, ["os"] = Os };
        if (OsVersion is not null)
        {
            json["os.version"] = OsVersion;
        }

        if (OsFeatures is not null)
        {
            json["os.features"] = Json.StringArray(OsFeatures);
        }

        if (Variant is not null)
        {
            json["variant"] = Variant;
        }

        return json;
    }
}
