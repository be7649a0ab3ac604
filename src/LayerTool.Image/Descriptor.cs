using System.Text.Json.Nodes;

namespace LayerTool.Image;

/// <summary>
/// A content descriptor: what a blob is, its digest and its size
/// (https://github.com/opencontainers/image-spec/blob/main/descriptor.md).
/// </summary>
public sealed record Descriptor(string MediaType, Digest Digest, long Size)
{
    /// <summary>Annotations (e.g. <c>org.opencontainers.image.ref.name</c>); null when there are none.</summary>
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }

    /// <summary>The platform, for a manifest listed in an index.</summary>
    public Platform? Platform { get; init; }

    /// <summary>Where else the blob may be fetched (foreign layers).</summary>
    public IReadOnlyList<string>? Urls { get; init; }

    /// <summary>An annotation's value or null.</summary>
    public string? Annotation(string key) =>
        Annotations is not null && Annotations.TryGetValue(key, out var value) ? value : null;

    /// <summary>Reads a descriptor; <paramref name="where"/> names it in errors.</summary>
    public static Descriptor FromJson(JsonNode? node, string where)
    {
        if (node is not JsonObject json)
        {
            throw new ImageFormatException($"{where}: a descriptor must be a JSON object.");
        }

        var digestText = Json.RequiredString(json, "digest", where);
        if (!Digest.TryParse(digestText, out var digest, out var error))
        {
            throw new ImageFormatException($"{where}: {error}");
        }

        var size = Json.RequiredLong(json, "size", where);
        if (size < 0)
        {
            throw new ImageFormatException($"{where}: negative size {size}.");
        }

        return new Descriptor(Json.OptionalString(json, "mediaType", where) ?? string.Empty, digest, size)
        {
            Annotations = Json.OptionalStringMap(json, "annotations", where),
            Platform = json["platform"] is JsonObject platform ? Platform.FromJson(platform, where + " platform") : null,
            Urls = Json.OptionalStringList(json, "urls", where),
        };
    }

    /// <summary>The descriptor as a JSON object, in the property order of the spec.</summary>
    public JsonObject ToJson()
    {
        var json = new JsonObject
        {
            ["mediaType"] = MediaType,
            ["digest"] = Digest.ToString(),
            ["size"] = Size,
        };
        if (Urls is { Count: > 0 })
        {
            json["urls"] = Json.StringArray(Urls);
        }

        if (Annotations is { Count: > 0 })
        {
            json["annotations"] = Json.StringMap(Annotations);
        }

        if (Platform is not null)
        {
            json["platform"] = Platform.ToJson();
        }

        return json;
    }
}
