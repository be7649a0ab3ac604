using System.Text.Json;
using System.Text.Json.Serialization;

namespace LayerTool.Build.Engine;

/// <summary>
/// The part of Docker's container config an image carries and a build changes. Null and empty differ
/// where Docker makes them differ (an empty Entrypoint clears the image's, a null one inherits it).
/// Lists and maps are never mutated: every change makes a new record.
/// </summary>
public sealed record ContainerConfig
{
    public string User { get; init; } = "";

    /// <summary><c>K=V</c> entries in order.</summary>
    public IReadOnlyList<string> Env { get; init; } = [];

    public IReadOnlyList<string>? Cmd { get; init; }

    public IReadOnlyList<string>? Entrypoint { get; init; }

    public string WorkingDir { get; init; } = "";

    /// <summary>Port keys such as <c>80/tcp</c>.</summary>
    public IReadOnlyList<string> ExposedPorts { get; init; } = [];

    public IReadOnlyList<string> Volumes { get; init; } = [];

    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    public HealthConfig? Healthcheck { get; init; }

    public string StopSignal { get; init; } = "";

    public IReadOnlyList<string>? Shell { get; init; }

    public IReadOnlyList<string>? OnBuild { get; init; }

    public bool ArgsEscaped { get; init; }

    /// <summary>The value of <paramref name="name"/> in <see cref="Env"/>, or null.</summary>
    public string? GetEnv(string name)
    {
        foreach (var e in Env)
        {
            var eq = e.IndexOf('=', StringComparison.Ordinal);
            if (eq >= 0 && e.AsSpan(0, eq).SequenceEqual(name)) return e[(eq + 1)..];
        }
        return null;
    }

    /// <summary>A copy with <paramref name="name"/> set (replaced in place, or appended).</summary>
    public ContainerConfig WithEnv(string name, string value)
    {
        var list = Env.ToList();
        var i = list.FindIndex(e => e.StartsWith(name + "=", StringComparison.Ordinal) || e == name);
        if (i >= 0) list[i] = name + "=" + value;
        else list.Add(name + "=" + value);
        return this with { Env = list };
    }

    /// <summary>A stable text form of the config, for cache keys (written field by field: the form must never drift).</summary>
    public string ToCanonicalJson()
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString(nameof(User), User);
            WriteList(json, nameof(Env), Env);
            WriteList(json, nameof(Cmd), Cmd);
            WriteList(json, nameof(Entrypoint), Entrypoint);
            json.WriteString(nameof(WorkingDir), WorkingDir);
            WriteList(json, nameof(ExposedPorts), ExposedPorts.Order(StringComparer.Ordinal).ToList());
            WriteList(json, nameof(Volumes), Volumes.Order(StringComparer.Ordinal).ToList());
            json.WriteStartArray(nameof(Labels));
            foreach (var (key, value) in Labels.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                json.WriteStartArray();
                json.WriteStringValue(key);
                json.WriteStringValue(value);
                json.WriteEndArray();
            }
            json.WriteEndArray();
            if (Healthcheck is { } h)
            {
                json.WriteStartObject(nameof(Healthcheck));
                WriteList(json, nameof(h.Test), h.Test);
                json.WriteNumber(nameof(h.Interval), h.Interval);
                json.WriteNumber(nameof(h.Timeout), h.Timeout);
                json.WriteNumber(nameof(h.StartPeriod), h.StartPeriod);
                json.WriteNumber(nameof(h.Retries), h.Retries);
                json.WriteEndObject();
            }
            else
            {
                json.WriteNull(nameof(Healthcheck));
            }
            json.WriteString(nameof(StopSignal), StopSignal);
            WriteList(json, nameof(Shell), Shell);
            WriteList(json, nameof(OnBuild), OnBuild);
            json.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void WriteList(Utf8JsonWriter json, string name, IReadOnlyList<string>? items)
    {
        if (items is null)
        {
            json.WriteNull(name);
            return;
        }
        json.WriteStartArray(name);
        foreach (var item in items) json.WriteStringValue(item);
        json.WriteEndArray();
    }
}

/// <summary>HEALTHCHECK settings; durations in nanoseconds as Docker stores them (0 = inherit the default).</summary>
public sealed record HealthConfig(IReadOnlyList<string>? Test, long Interval, long Timeout, long StartPeriod, int Retries);
