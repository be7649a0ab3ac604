using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace LayerTool.Image;

/// <summary>JSON reading and writing shared by the spec types: clear errors, compact deterministic output.</summary>
internal static class Json
{
    private static readonly JsonWriterOptions CompactWriter = new()
    {
        Indented = false,
        // Keep non-ASCII text as it is; escape only what JSON requires (plus the characters Go escapes).
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private static readonly JsonDocumentOptions ReadOptions = new() { MaxDepth = 256 };

    /// <summary>Parses a JSON object; <paramref name="where"/> names the document in errors.</summary>
    public static JsonObject ParseObject(ReadOnlySpan<byte> utf8, string where)
    {
        JsonNode? node;
        try
        {
            var bytes = utf8;
            if (bytes.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]))
            {
                bytes = bytes[3..];
            }

            node = JsonNode.Parse(bytes, documentOptions: ReadOptions);
        }
        catch (JsonException e)
        {
            throw new ImageFormatException($"{where}: invalid JSON: {e.Message}", e);
        }

        Materialize(node, where);
        return node as JsonObject ?? throw new ImageFormatException($"{where}: expected a JSON object.");
    }

    /// <summary>Parses a JSON array; <paramref name="where"/> names the document in errors.</summary>
    public static JsonArray ParseArray(ReadOnlySpan<byte> utf8, string where)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(utf8, documentOptions: ReadOptions);
        }
        catch (JsonException e)
        {
            throw new ImageFormatException($"{where}: invalid JSON: {e.Message}", e);
        }

        Materialize(node, where);

        return node as JsonArray ?? throw new ImageFormatException($"{where}: expected a JSON array.");
    }

    /// <summary>
    /// Builds every object of a parsed document now, so a duplicate key (which JsonObject refuses when it
    /// first builds the object) is reported here as a format error rather than later as an ArgumentException.
    /// </summary>
    private static void Materialize(JsonNode? node, string where)
    {
        try
        {
            Walk(node);
        }
        catch (ArgumentException e)
        {
            throw new ImageFormatException($"{where}: invalid JSON: {e.Message}", e);
        }

        static void Walk(JsonNode? node)
        {
            switch (node)
            {
                case JsonObject json:
                    foreach (var (_, child) in json)
                    {
                        Walk(child);
                    }

                    break;
                case JsonArray array:
                    foreach (var child in array)
                    {
                        Walk(child);
                    }

                    break;
            }
        }
    }

    /// <summary>Writes a node compactly (no whitespace), keeping property order: the same node gives the same bytes.</summary>
    public static byte[] ToBytes(JsonNode node)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, CompactWriter))
        {
            node.WriteTo(writer);
        }

        return buffer.ToArray();
    }

    public static string? OptionalString(JsonObject json, string name, string where)
    {
        var node = json[name];
        if (node is null)
        {
            return null;
        }

        if (node is JsonValue value && value.TryGetValue<string>(out var text))
        {
            return text;
        }

        throw new ImageFormatException($"{where}: '{name}' must be a string.");
    }

    public static string RequiredString(JsonObject json, string name, string where) =>
        OptionalString(json, name, where) ?? throw new ImageFormatException($"{where}: '{name}' is missing.");

    public static long? OptionalLong(JsonObject json, string name, string where)
    {
        var node = json[name];
        if (node is null)
        {
            return null;
        }

        if (node is JsonValue value && value.TryGetValue<long>(out var number))
        {
            return number;
        }

        if (node is JsonValue small && small.TryGetValue<int>(out var integer))
        {
            return integer;
        }

        if (node is JsonValue v && v.TryGetValue<JsonElement>(out var element)
            && element.ValueKind == JsonValueKind.Number && element.TryGetInt64(out number))
        {
            return number;
        }

        throw new ImageFormatException($"{where}: '{name}' must be an integer.");
    }

    public static long RequiredLong(JsonObject json, string name, string where) =>
        OptionalLong(json, name, where) ?? throw new ImageFormatException($"{where}: '{name}' is missing.");

    public static bool? OptionalBool(JsonObject json, string name, string where)
    {
        var node = json[name];
        if (node is null)
        {
            return null;
        }

        if (node is JsonValue value && value.TryGetValue<bool>(out var flag))
        {
            return flag;
        }

        if (node is JsonValue v && v.TryGetValue<JsonElement>(out var element)
            && element.ValueKind is JsonValueKind.True or JsonValueKind.False)
        {
            return element.GetBoolean();
        }

        throw new ImageFormatException($"{where}: '{name}' must be true or false.");
    }

    public static IReadOnlyList<string>? OptionalStringList(JsonObject json, string name, string where)
    {
        var node = json[name];
        if (node is null)
        {
            return null;
        }

        if (node is not JsonArray array)
        {
            throw new ImageFormatException($"{where}: '{name}' must be an array of strings.");
        }

        var list = new List<string>(array.Count);
        foreach (var item in array)
        {
            if (item is JsonValue value && value.TryGetValue<string>(out var text))
            {
                list.Add(text);
            }
            else
            {
                throw new ImageFormatException($"{where}: '{name}' must be an array of strings.");
            }
        }

        return list;
    }

    public static IReadOnlyDictionary<string, string>? OptionalStringMap(JsonObject json, string name, string where)
    {
        var node = json[name];
        if (node is null)
        {
            return null;
        }

        if (node is not JsonObject map)
        {
            throw new ImageFormatException($"{where}: '{name}' must be an object of strings.");
        }

        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, item) in map)
        {
            if (item is JsonValue value && value.TryGetValue<string>(out var text))
            {
                result[key] = text;
            }
            else
            {
                throw new ImageFormatException($"{where}: '{name}.{key}' must be a string.");
            }
        }

        return result;
    }

    /// <summary>The keys of an object whose values do not matter (ExposedPorts, Volumes).</summary>
    public static IReadOnlyList<string>? OptionalKeys(JsonObject json, string name, string where)
    {
        var node = json[name];
        if (node is null)
        {
            return null;
        }

        if (node is not JsonObject map)
        {
            throw new ImageFormatException($"{where}: '{name}' must be an object.");
        }

        return map.Select(p => p.Key).ToList();
    }

    public static JsonArray StringArray(IEnumerable<string> items)
    {
        var array = new JsonArray();
        foreach (var item in items)
        {
            array.Add((JsonNode?)JsonValue.Create(item));
        }

        return array;
    }

    /// <summary>A string map with keys in ordinal order, as Go's encoding/json writes maps.</summary>
    public static JsonObject StringMap(IEnumerable<KeyValuePair<string, string>> items)
    {
        var json = new JsonObject();
        foreach (var (key, value) in items.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            json[key] = value;
        }

        return json;
    }
}
