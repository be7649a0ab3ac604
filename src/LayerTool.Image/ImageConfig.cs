using System.Globalization;
using System.Text.Json.Nodes;

namespace LayerTool.Image;

/// <summary>
/// An image config (https://github.com/opencontainers/image-spec/blob/main/config.md; Docker's superset in
/// moby image/spec). It keeps the exact bytes it was read from (their sha256 is the image ID in the
/// graph-driver store) and the whole JSON document, so fields this code does not know survive every
/// edit: edits clone the document, change what they must and write it compactly and deterministically.
/// Immutable.
/// </summary>
public sealed class ImageConfig
{
    private readonly JsonObject _json;
    private readonly byte[] _bytes;

    private ImageConfig(JsonObject json, byte[] bytes, string where)
    {
        _json = json;
        _bytes = bytes;
        Digest = Digest.Compute(bytes);
        Architecture = Json.OptionalString(json, "architecture", where);
        Os = Json.OptionalString(json, "os", where);
        Variant = Json.OptionalString(json, "variant", where);
        Created = Json.OptionalString(json, "created", where);
        Author = Json.OptionalString(json, "author", where);
        Config = ReadContainerConfig(json["config"] as JsonObject, where + " config");
        DiffIds = ReadDiffIds(json, where);
        History = ReadHistory(json, where);
    }

    /// <summary>The bytes of the config as stored (or as written after an edit).</summary>
    public ReadOnlyMemory<byte> Bytes => _bytes;

    /// <summary>sha256 of <see cref="Bytes"/>: the config blob's digest, and the image ID in the graph-driver store.</summary>
    public Digest Digest { get; }

    public string? Architecture { get; }

    public string? Os { get; }

    public string? Variant { get; }

    /// <summary>The creation time as written (RFC 3339 text).</summary>
    public string? Created { get; }

    public string? Author { get; }

    /// <summary>The container config (<c>config</c>); empty when absent.</summary>
    public ContainerConfig Config { get; }

    /// <summary><c>rootfs.diff_ids</c>: the sha256 of each uncompressed layer, bottom first.</summary>
    public IReadOnlyList<Digest> DiffIds { get; }

    public IReadOnlyList<HistoryEntry> History { get; }

    /// <summary>The creation time parsed, or null when absent or unparsable.</summary>
    public DateTimeOffset? CreatedTime => ParseTime(Created);

    /// <summary>Parses a config from its bytes; <paramref name="where"/> names it in errors.</summary>
    public static ImageConfig Parse(ReadOnlySpan<byte> bytes, string where = "image config")
    {
        var json = Json.ParseObject(bytes, where);
        return new ImageConfig(json, bytes.ToArray(), where);
    }

    /// <summary>A config from a JSON document (cloned), written compactly.</summary>
    public static ImageConfig FromJson(JsonObject json)
    {
        ArgumentNullException.ThrowIfNull(json);
        var copy = (JsonObject)json.DeepClone();
        return new ImageConfig(copy, Json.ToBytes(copy), "image config");
    }

    /// <summary>A copy of the whole JSON document, unknown fields included.</summary>
    public JsonObject ToJson() => (JsonObject)_json.DeepClone();

    /// <summary>A new config: a copy of the document, changed by <paramref name="edit"/>, written compactly.</summary>
    public ImageConfig Edit(Action<JsonObject> edit)
    {
        ArgumentNullException.ThrowIfNull(edit);
        var copy = ToJson();
        edit(copy);
        return new ImageConfig(copy, Json.ToBytes(copy), "edited image config");
    }

    /// <summary>This config written compactly (same document, so same fields and order); the image ID of an
    /// edited config is the digest of these bytes.</summary>
    public ImageConfig Canonicalize() => Edit(static _ => { });

    /// <summary>A new config with <c>rootfs</c> = layers with these diff IDs.</summary>
    public ImageConfig WithDiffIds(IEnumerable<Digest> diffIds)
    {
        ArgumentNullException.ThrowIfNull(diffIds);
        var ids = diffIds.Select(d => d.ToString()).ToList();
        return Edit(json => json["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = Json.StringArray(ids) });
    }

    /// <summary>A new config with <c>created</c> set.</summary>
    public ImageConfig WithCreated(DateTimeOffset created) => Edit(json => json["created"] = FormatTime(created));

    /// <summary>A new config whose labels are changed: a null value removes the label.</summary>
    public ImageConfig WithLabels(IEnumerable<KeyValuePair<string, string?>> changes)
    {
        ArgumentNullException.ThrowIfNull(changes);
        var list = changes.ToList();
        return Edit(json => SetLabels(json, list));
    }

    /// <summary>
    /// A new config whose <c>config</c> fields named by <paramref name="config"/> are set (null properties
    /// remove the field); fields of <c>config</c> this code does not know are kept.
    /// </summary>
    public ImageConfig WithContainerConfig(ContainerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return Edit(json =>
        {
            if (json["config"] is not JsonObject target)
            {
                target = new JsonObject();
                json["config"] = target;
            }

            Set(target, "User", config.User is null ? null : JsonValue.Create(config.User));
            Set(target, "ExposedPorts", Keys(config.ExposedPorts));
            Set(target, "Env", List(config.Env));
            Set(target, "Entrypoint", List(config.Entrypoint));
            Set(target, "Cmd", List(config.Cmd));
            Set(target, "Healthcheck", config.Healthcheck is null ? null : WriteHealth(config.Healthcheck));
            Set(target, "ArgsEscaped", config.ArgsEscaped is null ? null : JsonValue.Create(config.ArgsEscaped.Value));
            Set(target, "Volumes", Keys(config.Volumes));
            Set(target, "WorkingDir", config.WorkingDir is null ? null : JsonValue.Create(config.WorkingDir));
            Set(target, "OnBuild", List(config.OnBuild));
            Set(target, "Labels", config.Labels is null ? null : Json.StringMap(config.Labels));
            Set(target, "StopSignal", config.StopSignal is null ? null : JsonValue.Create(config.StopSignal));
            Set(target, "Shell", List(config.Shell));
        });

        static JsonNode? List(IReadOnlyList<string>? items) => items is null ? null : Json.StringArray(items);

        static JsonNode? Keys(IReadOnlyList<string>? keys)
        {
            if (keys is null)
            {
                return null;
            }

            var json = new JsonObject();
            foreach (var key in keys.Order(StringComparer.Ordinal))
            {
                json[key] = new JsonObject();
            }

            return json;
        }

        static void Set(JsonObject target, string name, JsonNode? value)
        {
            if (value is null)
            {
                target.Remove(name);
            }
            else
            {
                target[name] = value;
            }
        }
    }

    /// <summary>Formats a time as Go's RFC 3339 with nanoseconds does (UTC, trailing zeros trimmed).</summary>
    public static string FormatTime(DateTimeOffset time)
    {
        var utc = time.UtcDateTime;
        var text = utc.ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture);
        var fraction = utc.Ticks % TimeSpan.TicksPerSecond;
        if (fraction != 0)
        {
            text += "." + (fraction * 100).ToString("D9", CultureInfo.InvariantCulture).TrimEnd('0');
        }

        return text + "Z";
    }

    internal static DateTimeOffset? ParseTime(string? text) =>
        text is not null && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time)
            ? time
            : null;

    internal static void SetLabels(JsonObject json, IEnumerable<KeyValuePair<string, string?>> changes)
    {
        var list = changes.ToList();
        if (list.All(c => c.Value is null) && (json["config"] as JsonObject)?["Labels"] is not JsonObject)
        {
            return;
        }

        if (json["config"] is not JsonObject config)
        {
            config = new JsonObject();
            json["config"] = config;
        }

        if (config["Labels"] is not JsonObject labels)
        {
            labels = new JsonObject();
            config["Labels"] = labels;
        }

        foreach (var (key, value) in list)
        {
            if (value is null)
            {
                labels.Remove(key);
            }
            else
            {
                labels[key] = value;
            }
        }
    }

    private static JsonObject WriteHealth(HealthConfig health)
    {
        var json = new JsonObject();
        if (health.Test is not null)
        {
            json["Test"] = Json.StringArray(health.Test);
        }

        AddDuration("Interval", health.Interval);
        AddDuration("Timeout", health.Timeout);
        AddDuration("StartPeriod", health.StartPeriod);
        AddDuration("StartInterval", health.StartInterval);
        if (health.Retries is { } retries)
        {
            json["Retries"] = retries;
        }

        return json;

        void AddDuration(string name, TimeSpan? value)
        {
            if (value is { } span)
            {
                json[name] = span.Ticks * 100;
            }
        }
    }

    private static ContainerConfig ReadContainerConfig(JsonObject? json, string where)
    {
        if (json is null)
        {
            return new ContainerConfig();
        }

        return new ContainerConfig
        {
            User = Json.OptionalString(json, "User", where),
            Env = Json.OptionalStringList(json, "Env", where),
            Cmd = Json.OptionalStringList(json, "Cmd", where),
            Entrypoint = Json.OptionalStringList(json, "Entrypoint", where),
            WorkingDir = Json.OptionalString(json, "WorkingDir", where),
            Labels = Json.OptionalStringMap(json, "Labels", where),
            ExposedPorts = Json.OptionalKeys(json, "ExposedPorts", where),
            Volumes = Json.OptionalKeys(json, "Volumes", where),
            StopSignal = Json.OptionalString(json, "StopSignal", where),
            Healthcheck = json["Healthcheck"] is JsonObject health ? ReadHealth(health, where + " Healthcheck") : null,
            Shell = Json.OptionalStringList(json, "Shell", where),
            OnBuild = Json.OptionalStringList(json, "OnBuild", where),
            ArgsEscaped = Json.OptionalBool(json, "ArgsEscaped", where),
        };
    }

    private static HealthConfig ReadHealth(JsonObject json, string where) => new()
    {
        Test = Json.OptionalStringList(json, "Test", where),
        Interval = Duration(json, "Interval", where),
        Timeout = Duration(json, "Timeout", where),
        StartPeriod = Duration(json, "StartPeriod", where),
        StartInterval = Duration(json, "StartInterval", where),
        Retries = Json.OptionalLong(json, "Retries", where) is { } retries ? (int)retries : null,
    };

    private static List<Digest> ReadDiffIds(JsonObject json, string where)
    {
        if (json["rootfs"] is null)
        {
            return new List<Digest>();
        }

        if (json["rootfs"] is not JsonObject rootfs)
        {
            throw new ImageFormatException($"{where}: 'rootfs' must be an object.");
        }

        var ids = Json.OptionalStringList(rootfs, "diff_ids", where + " rootfs") ?? Array.Empty<string>();
        var digests = new List<Digest>(ids.Count);
        foreach (var id in ids)
        {
            if (!Digest.TryParse(id, out var digest, out var error))
            {
                throw new ImageFormatException($"{where}: rootfs.diff_ids: {error}");
            }

            digests.Add(digest);
        }

        return digests;
    }

    private static List<HistoryEntry> ReadHistory(JsonObject json, string where)
    {
        var node = json["history"];
        if (node is null)
        {
            return new List<HistoryEntry>();
        }

        if (node is not JsonArray array)
        {
            throw new ImageFormatException($"{where}: 'history' must be an array.");
        }

        var entries = new List<HistoryEntry>(array.Count);
        for (var i = 0; i < array.Count; i++)
        {
            var at = $"{where} history[{i}]";
            if (array[i] is not JsonObject entry)
            {
                throw new ImageFormatException($"{at}: must be an object.");
            }

            entries.Add(new HistoryEntry
            {
                Created = Json.OptionalString(entry, "created", at),
                CreatedBy = Json.OptionalString(entry, "created_by", at),
                Author = Json.OptionalString(entry, "author", at),
                Comment = Json.OptionalString(entry, "comment", at),
                EmptyLayer = Json.OptionalBool(entry, "empty_layer", at) ?? false,
            });
        }

        return entries;
    }

    private static TimeSpan? Duration(JsonObject json, string name, string where) =>
        Json.OptionalLong(json, name, where) is { } nanoseconds ? TimeSpan.FromTicks(nanoseconds / 100) : null;
}
