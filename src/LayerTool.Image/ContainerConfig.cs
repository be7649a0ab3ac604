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
