namespace LayerTool.Build;

/// <summary>How progress is shown: docker's plain text, or one JSON object per line.</summary>
public enum ProgressMode
{
    Auto,
    Plain,
    Json,
}

/// <summary>Everything one <c>layertool build</c> needs; the CLI fills it from docker-like flags.</summary>
/// <param name="ContextDirectory">The build context directory.</param>
/// <param name="DockerfilePath">The Dockerfile (null: <c>Dockerfile</c> in the context).</param>
/// <param name="Tags">Tags for the final image (<c>-t</c>).</param>
/// <param name="BuildArgs">Build args (<c>--build-arg K=V</c>; a null value means "take it from the environment", resolved by the caller).</param>
/// <param name="Target">The stage to build (null: the last).</param>
/// <param name="NetworkMode">Network for RUN (null: the engine's default, as docker).</param>
/// <param name="NoCache">Do not use the build cache.</param>
/// <param name="Pull">Always pull FROM images.</param>
/// <param name="Quiet">Print only the final image ID.</param>
/// <param name="ImageIdFile">Write the final image ID to this file.</param>
/// <param name="Labels">Labels for the final image (<c>--label</c>).</param>
/// <param name="Progress">Output format.</param>
/// <param name="Squash">COMPRESS the result onto the target stage's FROM image at the end.</param>
/// <param name="CacheDirectory">Where the build cache index lives (null: no cache).</param>
public sealed record BuildOptions(
    string ContextDirectory,
    string? DockerfilePath = null,
    IReadOnlyList<string>? Tags = null,
    IReadOnlyDictionary<string, string>? BuildArgs = null,
    string? Target = null,
    string? NetworkMode = null,
    bool NoCache = false,
    bool Pull = false,
    bool Quiet = false,
    string? ImageIdFile = null,
    IReadOnlyDictionary<string, string>? Labels = null,
    ProgressMode Progress = ProgressMode.Auto,
    bool Squash = false,
    string? CacheDirectory = null)
{
    /// <summary>The ID that names the build's containers (<c>layertool-build-ID-N</c>); null: a random one. The CLI
    /// gives one that names its process, so that a later run can remove the containers of a build that was killed.</summary>
    public string? BuildId { get; init; }

    /// <summary>Record the final stage's FROM image on the final image as the labels <c>org.opencontainers.image.base.name</c>
    /// and <c>.base.digest</c> (<see cref="BaseLabels"/>), unless the user sets them or the stage is FROM scratch. The CLI
    /// turns it on (<c>--no-base-labels</c> turns it off); off by default for library callers, whose images then match
    /// docker's builds ID for ID.</summary>
    public bool RecordBase { get; init; }
}

/// <summary>One TAG the build applied.</summary>
public sealed record TaggedImage(string Reference, string ImageId, int Line);

/// <summary>One COMPRESS the build did.</summary>
public sealed record CompressedImage(string ImageId, string? BaseId, int LayersBefore, int LayersAfter, long BytesBefore, long BytesAfter, int Line);

/// <summary>The outcome of a build.</summary>
public sealed record BuildResult(
    string ImageId,
    IReadOnlyList<string> Tags,
    IReadOnlyList<TaggedImage> TaggedImages,
    IReadOnlyList<CompressedImage> Compressions,
    int Steps,
    int CachedSteps);
