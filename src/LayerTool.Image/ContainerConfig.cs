namespace LayerTool.Image;

/// <summary>
/// The <c>config</c> object of an image config: how a container of the image runs
/// (https://github.com/opencontainers/image-spec/blob/main/config.md#properties, plus Docker's extra
/// fields <c>Healthcheck</c>, <c>Shell</c>, <c>OnBuild</c>, <c>ArgsEscaped</c>). Null means absent; an
/// empty list (e.g. <c>Entrypoint: []</c>) is kept apart from null because docker treats them differently.
/// </summary>
public sealed record ContainerConfig
{
    public string? User { get; init; }

    public IReadOnlyList<string>? Env { get; init; }

    public IReadOnlyList<string>? Cmd { get; init; }

    public IReadOnlyList<string>? Entrypoint { get; init; }

    public string? WorkingDir { get; init; }

    public IReadOnlyDictionary<string, string>? Labels { get; init; }

    /// <summary>The keys of <c>ExposedPorts</c>, e.g. <c>80/tcp</c>.</summary>
    public IReadOnlyList<string>? ExposedPorts { get; init; }

    /// <summary>The keys of <c>Volumes</c>.</summary>
    public IReadOnlyList<string>? Volumes { get; init; }

    public string? StopSignal { get; init; }

    public HealthConfig? Healthcheck { get; init; }

    public IReadOnlyList<string>? Shell { get; init; }

    public IReadOnlyList<string>? OnBuild { get; init; }

    public bool? ArgsEscaped { get; init; }

    /// <summary>The value of <paramref name="name"/> in <see cref="Env"/>, or null.</summary>
    public string? GetEnv(string name)
    {
        foreach (var e in Env ?? [])
        {
            var eq = e.IndexOf('=', StringComparison.Ordinal);
            if (eq >= 0 && e.AsSpan(0, eq).SequenceEqual(name)) return e[(eq + 1)..];
        }
        return null;
    }

    /// <summary>A copy with <paramref name="name"/> set (replaced in place, or appended).</summary>
    public ContainerConfig WithEnv(string name, string value)
    {
        var list = (Env ?? []).ToList();
        var i = list.FindIndex(e => e.StartsWith(name + "=", StringComparison.Ordinal) || e == name);
        if (i >= 0) list[i] = name + "=" + value;
        else list.Add(name + "=" + value);
        return this with { Env = list };
    }

    /// <summary>
    /// A stable text form of what a build step's result depends on, for cache keys: written field by field, the form
    /// must never drift (it is the classic executor's cache key since its first version). An absent string, list or
    /// map is written as the empty one, as the engine treats them alike; Cmd, Entrypoint, Shell and OnBuild keep
    /// null apart from empty. Durations are nanoseconds, as Docker stores them.
    /// </summary>
    public string ToCanonicalJson()
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var json = new System.Text.Json.Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString(nameof(User), User ?? "");
            WriteList(json, nameof(Env), Env ?? []);
            WriteList(json, nameof(Cmd), Cmd);
            WriteList(json, nameof(Entrypoint), Entrypoint);
            json.WriteString(nameof(WorkingDir), WorkingDir ?? "");
            WriteList(json, nameof(ExposedPorts), (ExposedPorts ?? []).Order(StringComparer.Ordinal).ToList());
            WriteList(json, nameof(Volumes), (Volumes ?? []).Order(StringComparer.Ordinal).ToList());
            json.WriteStartArray(nameof(Labels));
            foreach (var (key, value) in (Labels ?? new Dictionary<string, string>()).OrderBy(kv => kv.Key, StringComparer.Ordinal))
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
                json.WriteNumber(nameof(h.Interval), HealthConfig.Nanoseconds(h.Interval));
                json.WriteNumber(nameof(h.Timeout), HealthConfig.Nanoseconds(h.Timeout));
                json.WriteNumber(nameof(h.StartPeriod), HealthConfig.Nanoseconds(h.StartPeriod));
                json.WriteNumber(nameof(h.Retries), h.Retries ?? 0);
                json.WriteEndObject();
            }
            else
            {
                json.WriteNull(nameof(Healthcheck));
            }
            json.WriteString(nameof(StopSignal), StopSignal ?? "");
            WriteList(json, nameof(Shell), Shell);
            WriteList(json, nameof(OnBuild), OnBuild);
            json.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void WriteList(System.Text.Json.Utf8JsonWriter json, string name, IReadOnlyList<string>? items)
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

/// <summary>Docker's <c>Healthcheck</c>: durations are Go nanoseconds in JSON, <see cref="TimeSpan"/> here.</summary>
public sealed record HealthConfig
{
    /// <summary><c>["NONE"]</c>, <c>["CMD", args...]</c> or <c>["CMD-SHELL", command]</c>; null inherits.</summary>
    public IReadOnlyList<string>? Test { get; init; }

    public TimeSpan? Interval { get; init; }

    public TimeSpan? Timeout { get; init; }

    public TimeSpan? StartPeriod { get; init; }

    public TimeSpan? StartInterval { get; init; }

    public int? Retries { get; init; }

    /// <summary>A duration as Docker's JSON writes it (Go nanoseconds; absent = 0, inherit the default).</summary>
    public static long Nanoseconds(TimeSpan? duration) => duration is { } d ? d.Ticks * 100 : 0;
}

/// <summary>
/// One entry of an image config's <c>history</c>
/// (https://github.com/opencontainers/image-spec/blob/main/config.md#properties). Entries with
/// <see cref="EmptyLayer"/> have no layer; the others match <c>rootfs.diff_ids</c> one to one.
/// </summary>
public sealed record HistoryEntry
{
    /// <summary>The creation time as written (RFC 3339), kept as text so it round-trips exactly.</summary>
    public string? Created { get; init; }

    public string? CreatedBy { get; init; }

    public string? Author { get; init; }

    public string? Comment { get; init; }

    public bool EmptyLayer { get; init; }
}
