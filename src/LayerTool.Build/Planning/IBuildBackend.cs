namespace LayerTool.Build.Planning;

/// <summary>
/// One standard Dockerfile build, with no TAG and no COMPRESS left in it: what the planner turns an
/// extended Dockerfile into, and what a backend (the engine's BuildKit, a remote builder) runs.
/// </summary>
/// <param name="Index">The build's position in its plan (0-based), for progress and temporary names.</param>
/// <param name="Description">What the build is for, for people: "TAG app:base (Dockerfile:7)", "final image".</param>
/// <param name="Dockerfile">The Dockerfile text to build. Line numbers match the user's file wherever the
/// planner kept a line, so the engine's errors point at the user's lines.</param>
/// <param name="Target">The stage to build (null: the last).</param>
/// <param name="BuildArgs">Build args for this build.</param>
/// <param name="Tags">Tags the backend gives the result (may be empty).</param>
/// <param name="Labels">Labels for the result (<c>--label</c>).</param>
/// <param name="NetworkMode">Network for RUN (null: the engine's default).</param>
/// <param name="NoCache">Do not use the builder's cache.</param>
public sealed record StandardBuild(
    int Index,
    string Description,
    string Dockerfile,
    string? Target,
    IReadOnlyDictionary<string, string> BuildArgs,
    IReadOnlyList<string> Tags,
    IReadOnlyDictionary<string, string> Labels,
    string? NetworkMode,
    bool NoCache)
{
    /// <summary>
    /// The image the built stage is based on (its FROM, through earlier stages), when the backend is to record it on the
    /// result as the <see cref="BaseLabels"/> (added to <see cref="Labels"/> once the image is pulled and its digest known);
    /// null: nothing recorded. Set by the planner on the final build only.
    /// </summary>
    public string? RecordBaseOf { get; init; }

    /// <summary>
    /// Wanted only if every step comes from the builder's cache: a backend that can tell stops the build at the first
    /// step (other than a FROM) it would run, and throws <see cref="BuildException"/>. Used after a failed build under
    /// <c>--no-cache</c> for the TAGs that were to replay it: those whose steps ran before the failure are still tagged,
    /// and nothing runs a second time. A backend that cannot tell builds as usual.
    /// </summary>
    public bool OnlyFromCache { get; init; }
}

/// <summary>The outcome of one standard build.</summary>
/// <param name="ImageId">The image ID (<c>sha256:...</c>).</param>
/// <param name="Steps">Steps the builder ran or took from its cache.</param>
/// <param name="CachedSteps">Steps taken from the cache.</param>
public sealed record StandardBuildResult(string ImageId, int Steps, int CachedSteps);

/// <summary>
/// Runs standard builds against one build context. An implementation owns its context (spooled once and
/// reused for every build of a plan) and its progress output; it never reads outside the context.
/// </summary>
public interface IBuildBackend
{
    /// <summary>Short name for messages: "buildkit", "classic".</summary>
    string Name { get; }

    /// <summary>Runs <paramref name="build"/>; throws <see cref="BuildException"/> when the build fails.</summary>
    Task<StandardBuildResult> BuildAsync(StandardBuild build, CancellationToken cancellationToken);
}
