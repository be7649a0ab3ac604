namespace LayerTool.Build.Planning;

/// <summary>
/// What an extended Dockerfile compiles to: standard builds, squashes and config-only edits, in the order
/// they run. Made by <see cref="BuildPlanner.Plan"/>, run by <see cref="BuildPlanRunner"/>, printed by
/// <see cref="BuildPlanFormatter"/>.
/// </summary>
/// <param name="BuildId">Names this plan's temporary tags (<c>layertool-plan-&lt;id&gt;-&lt;n&gt;:tmp</c>).</param>
/// <param name="FileName">The Dockerfile's name, for messages (<c>Dockerfile:7: ...</c>).</param>
/// <param name="Target">The stage the plan ends with (its name, or its index when it has none).</param>
/// <param name="Steps">The steps, in order; the one whose output is <see cref="PlanOutput.Final"/> gives the build's result
/// (the last step, unless TAGs replayed under <c>--no-cache</c> follow it).</param>
/// <param name="Tags">The final image's tags (<c>-t</c>), given by the last step.</param>
/// <param name="SourceText">The user's Dockerfile, which the generated ones are compared with when printed.</param>
public sealed record BuildPlan(string BuildId, string FileName, string Target, IReadOnlyList<PlanStep> Steps, IReadOnlyList<string> Tags, string SourceText)
{
    /// <summary>Every temporary tag a step gives its output: all are removed when the plan ends, whatever the outcome.</summary>
    public IReadOnlyList<string> TemporaryTags =>
        [.. Steps.SelectMany(s => s.Output == PlanOutput.Temporary ? s.Tags : s.Tags.Where(IsTemporary))];

    /// <summary>The step that gives the build's result.</summary>
    public int FinalStep => Steps.Last(s => s.Output == PlanOutput.Final).Index;

    /// <summary>Whether <paramref name="tag"/> is one of this plan's temporary tags (a TAG step under --no-cache has one beside the user's).</summary>
    public bool IsTemporary(string tag) =>
        tag.StartsWith(BuildPlanner.TemporaryRepositoryPrefix + BuildId + "-", StringComparison.Ordinal);
}

/// <summary>What a step does.</summary>
public enum PlanStepKind
{
    /// <summary>A standard Dockerfile build (<see cref="PlanBuild"/>).</summary>
    Build,

    /// <summary>A squash of an earlier step's image onto a base (<see cref="PlanSquash"/>).</summary>
    Squash,

    /// <summary>A config-only copy of an image with its ONBUILD triggers cleared, so that a continuation does not fire them.</summary>
    ClearOnBuild,

    /// <summary>A config-only copy of an image with the triggers of an earlier squash put back before its own.</summary>
    RestoreOnBuild,
}

/// <summary>What becomes of a step's output.</summary>
public enum PlanOutput
{
    /// <summary>Needed by later steps only: tagged with a temporary tag, removed at the end.</summary>
    Temporary,

    /// <summary>A TAG's image: tagged with the TAG's references, kept.</summary>
    Tag,

    /// <summary>The build's result: tagged with <c>-t</c>, kept.</summary>
    Final,
}

/// <summary>
/// An image a step reads: the output of an earlier step, an image reference, or scratch (both null).
/// </summary>
public sealed record PlanImage(int? Step, string? Reference)
{
    public static PlanImage Scratch { get; } = new(null, null);

    public static PlanImage FromStep(int step) => new(step, null);

    public static PlanImage Of(string reference) => new(null, reference);

    public bool IsScratch => Step is null && Reference is null;

    public override string ToString() => Step is { } s ? $"step {s}" : Reference ?? "scratch";
}

/// <summary>One step of a <see cref="BuildPlan"/>.</summary>
/// <param name="Index">Its position (0-based).</param>
/// <param name="Kind">What it does.</param>
/// <param name="Description">For people: <c>TAG app:base (Dockerfile:7)</c>.</param>
/// <param name="Stage">The stage it belongs to (name, or index when unnamed).</param>
/// <param name="Line">The user's line it comes from (TAG, COMPRESS), or null.</param>
/// <param name="Output">What becomes of its output.</param>
/// <param name="Tags">The tags its output gets: temporary ones, a TAG's references, or <c>-t</c>.</param>
public abstract record PlanStep(int Index, PlanStepKind Kind, string Description, string Stage, int? Line, PlanOutput Output, IReadOnlyList<string> Tags);

/// <summary>A standard build; <see cref="Build"/> is what the backend gets (its Tags are <see cref="PlanStep.Tags"/>).</summary>
public sealed record PlanBuild(int Index, string Description, string Stage, int? Line, PlanOutput Output, StandardBuild Build)
    : PlanStep(Index, PlanStepKind.Build, Description, Stage, Line, Output, Build.Tags)
{
    /// <summary>
    /// Under <c>--no-cache</c>, the earlier step whose build ran this build's steps without the cache: this one (a TAG) replays
    /// them from that build's fresh cache records, so its steps are not counted again.
    /// </summary>
    public int? ReplayOf { get; init; }
}

/// <summary>
/// Squashes <see cref="Image"/> onto <see cref="Base"/> (COMPRESS, <c>--squash</c>); <see cref="BaseDescription"/>
/// is the base as the Dockerfile names it (<c>busybox</c>, <c>stage builder</c>, <c>scratch</c>).
/// </summary>
public sealed record PlanSquash(int Index, string Description, string Stage, int? Line, PlanOutput Output, IReadOnlyList<string> Tags,
    PlanImage Image, PlanImage Base, string BaseDescription)
    : PlanStep(Index, PlanStepKind.Squash, Description, Stage, Line, Output, Tags);

/// <summary>
/// A config-only copy of <see cref="Image"/>: with <see cref="PlanStepKind.ClearOnBuild"/> its ONBUILD list
/// emptied; with <see cref="PlanStepKind.RestoreOnBuild"/> the list of <see cref="OnBuildFrom"/> put before its own.
/// </summary>
public sealed record PlanConfig(int Index, PlanStepKind Kind, string Description, string Stage, int? Line, PlanOutput Output, IReadOnlyList<string> Tags,
    PlanImage Image, PlanImage? OnBuildFrom)
    : PlanStep(Index, Kind, Description, Stage, Line, Output, Tags);
