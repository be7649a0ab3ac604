using System.Text.Json.Nodes;

namespace LayerTool.Image;

/// <summary>
/// An image manifest: OCI (https://github.com/opencontainers/image-spec/blob/main/manifest.md) or Docker
/// v2 schema 2 (https://distribution.github.io/distribution/spec/manifest-v2-2/), which share this shape.
/// </summary>
public sealed record ImageManifest(string MediaType, Descriptor Config, IReadOnlyList<Descriptor> Layers)
{
    public int SchemaVersion { get; init; } = 2;

    public IReadOnlyDictionary<string, string>? Annotations { get; init; }

    /// <summary>Reads a manifest; <paramref name="where"/> names it in errors.</summary>
    public static ImageManifest Parse(ReadOnlySpan<byte> bytes, string where = "image manifest")
    {
        var json = Json.ParseObject(bytes, where);
        var schemaVersion = Json.OptionalLong(json, "schemaVersion", where);
        if (schemaVersion != 2)
        {
            throw new ImageFormatException($"{where}: schemaVersion {schemaVersion?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "(missing)"} is not supported; only 2 is.");
        }

        var mediaType = Json.OptionalString(json, "mediaType", where) ?? MediaTypes.OciManifest;
        if (MediaTypes.IsIndex(mediaType) || json["manifests"] is not null)
        {
            throw new ImageFormatException($"{where}: this is an image index, not a manifest.");
        }

        var config = Descriptor.FromJson(json["config"], where + " config");
        var layers = json["layers"] switch
        {
            null => [],
            JsonArray array => array.Select((node, i) => Descriptor.FromJson(node, $"{where} layers[{i}]")).ToList(),
            _ => throw new ImageFormatException($"{where}: 'layers' must be an array."),
        };
        return new ImageManifest(mediaType, config, layers)
        {
            Annotations = Json.OptionalStringMap(json, "annotations", where),
        };
    }

    /// <summary>The manifest written compactly, fields in the spec's order.</summary>
    public byte[] ToBytes()
    {
        var json = new JsonObject
        {
            ["schemaVersion"] = SchemaVersion,
            ["mediaType"] = MediaType,
            ["config"] = Config.ToJson(),
            ["layers"] = new JsonArray(Layers.Select(l => (JsonNode)l.ToJson()).ToArray()),
        };
        if (Annotations is { Count: > 0 })
        {
            json["annotations"] = Json.StringMap(Annotations);
        }

        return Json.ToBytes(json);
    }
}

/// <summary>
/// An image index (https://github.com/opencontainers/image-spec/blob/main/image-index.md) or a Docker
/// manifest list; also the <c>index.json</c> of an OCI image layout.
/// </summary>
public sealed record ImageIndex(IReadOnlyList<Descriptor> Manifests)
{
    public int SchemaVersion { get; init; } = 2;

    public string? MediaType { get; init; } = MediaTypes.OciIndex;

    public IReadOnlyDictionary<string, string>? Annotations { get; init; }

    /// <summary>Reads an index; <paramref name="where"/> names it in errors.</summary>
    public static ImageIndex Parse(ReadOnlySpan<byte> bytes, string where = "image index")
    {
        var json = Json.ParseObject(bytes, where);
        var schemaVersion = Json.OptionalLong(json, "schemaVersion", where);
        if (schemaVersion != 2)
        {
            throw new ImageFormatException($"{where}: schemaVersion {schemaVersion?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "(missing)"} is not supported; only 2 is.");
        }

        var manifests = json["manifests"] switch
        {
            JsonArray array => array.Select((node, i) => Descriptor.FromJson(node, $"{where} manifests[{i}]")).ToList(),
            _ => throw new ImageFormatException($"{where}: 'manifests' must be an array."),
        };
        return new ImageIndex(manifests)
        {
            MediaType = Json.OptionalString(json, "mediaType", where),
            Annotations = Json.OptionalStringMap(json, "annotations", where),
        };
    }

    /// <summary>The index written compactly, fields in the spec's order.</summary>
    public byte[] ToBytes()
    {
        var json = new JsonObject { ["schemaVersion"] = SchemaVersion };
        if (MediaType is not null)
        {
            json["mediaType"] = MediaType;
        }

        json["manifests"] = new JsonArray(Manifests.Select(m => (JsonNode)m.ToJson()).ToArray());
        if (Annotations is { Count: > 0 })
        {
            json["annotations"] = Json.StringMap(Annotations);
        }

        return Json.ToBytes(json);
    }
}
