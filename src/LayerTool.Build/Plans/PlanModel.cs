namespace LayerTool.Build.Plans;

// The model of a build plan file (`layertool plan ...`): many images, built in dependency order. Read from
// YAML by PlanLoader, checked by PlanGraph, run by the plan runner, exported to GitLab CI / Argo. Not to be
// confused with Planning/ (one extended Dockerfile compiled onto standard builds), which each image's build
// still goes through.

/// <summary>A place in a plan file, for messages (<c>plan.yaml:12: ...</c>).</summary>
/// <param name="File">The plan file's path as the user gave it.</param>
/// <param name="Line">1-based line.</param>
/// <param name="Column">1-based column.</param>
public readonly record struct PlanLocation(string File, int Line, int Column)
{
    /// <inheritdoc />
    public override string ToString() => $"{File}:{Line}";
}

/// <summary>Where an image's result goes.</summary>
[Flags]
public enum PlanOutputs
{
    /// <summary>Tagged in the engine that ran the build (and in the local engine when that is another one).</summary>
    Engine = 1,

    /// <summary>Pushed to <see cref="PlanImage.Repository"/>, by digest and under each tag.</summary>
    Registry = 2,
}

/// <summary>A whole plan file.</summary>
/// <param name="Path">The file's full path.</param>
/// <param name="Registry">The registry repository prefix used to hand images between engines and for
/// exports (<c>127.0.0.1:5000/team</c>); null when the plan names none.</param>
/// <param name="Images">The images, in file order.</param>
public sealed record PlanFile(string Path, string? Registry, IReadOnlyList<PlanImage> Images);

/// <summary>One image of a plan.</summary>
/// <param name="Name">Unique in the plan; what other images' <c>FROM</c> / <c>COPY --from</c> use to name it.</param>
/// <param name="Context">The build context, a full path.</param>
/// <param name="Dockerfile">The Dockerfile, a full path (TAG and COMPRESS work as in <c>layertool build</c>).</param>
/// <param name="BuildArgs">Build args.</param>
/// <param name="Target">The stage to build; null: the last.</param>
/// <param name="Tags">Tags for the result (<c>name:tag</c>); may be empty.</param>
/// <param name="Outputs">Where the result goes.</param>
/// <param name="Repository">The registry repository the result is pushed to (with <see cref="PlanOutputs.Registry"/>),
/// or the one used to hand it to another engine; null: <c>{plan registry}/{name}</c> when the plan has one.</param>
/// <param name="DependsOn">Dependencies given by hand (names of other plan images); the inferred ones are
/// <c>PlanGraph</c>'s business.</param>
/// <param name="Location">Where the image is declared.</param>
public sealed record PlanImage(
    string Name,
    string Context,
    string Dockerfile,
    IReadOnlyDictionary<string, string> BuildArgs,
    string? Target,
    IReadOnlyList<string> Tags,
    PlanOutputs Outputs,
    string? Repository,
    IReadOnlyList<string> DependsOn,
    PlanLocation Location)
{
    /// <summary>Where each <see cref="DependsOn"/> entry is written (same order); empty for an image made in code.</summary>
    public IReadOnlyList<PlanLocation> DependsOnLocations { get; init; } = [];

    /// <summary>The repository the result is pushed to or handed over by: <see cref="Repository"/>, else
    /// <c>{registry}/{name}</c>; null when neither is known.</summary>
    public string? EffectiveRepository(string? registry) => Repository ?? (registry is null ? null : $"{registry}/{Name}");
}
