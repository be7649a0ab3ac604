using LayerTool.Build;
using LayerTool.Build.Execution;
using LayerTool.Build.Frontend;
using LayerTool.Build.Planning;
using LayerTool.Build.Progress;
using LayerTool.Build.BuildKit;
using LayerTool.Docker;
using LayerTool.Docker.BuildKit;
using LayerTool.Docker.Images;
using LayerTool.Docker.Squash;
using LayerTool.Dockerfile.Syntax;

namespace LayerTool.Build.Builds;

/// <summary>Which builder runs a build.</summary>
public enum EngineBuilder
{
    /// <summary>The engine's BuildKit when it has it and can read the Dockerfile, else the classic executor.</summary>
    Auto,

    /// <summary>The engine's embedded BuildKit, or an error.</summary>
    BuildKit,

    /// <summary>LayerTool's own step executor.</summary>
    Classic,
}

/// <summary>How one build talks to the people watching it.</summary>
/// <param name="Log">The classic executor's and the planner's lines.</param>
/// <param name="CreateProgress">Makes the BuildKit progress renderer (only called for a BuildKit build; disposed after it
/// when it is <see cref="IDisposable"/>).</param>
/// <param name="Notice">One-line notices, without the <c>layertool: </c> prefix: <c>building with the classic builder: why</c>,
/// <c>warning: ...</c>.</param>
public sealed record BuildReporting(BuildLog Log, Func<IBuildKitProgress> CreateProgress, Action<string> Notice);

/// <summary>
/// One <c>layertool build</c> on one engine, whichever builder runs it: the builder is chosen against that engine
/// (auto: its BuildKit when it has one and its frontend reads the file, else the classic executor, with the reason);
/// on BuildKit, TAG, COMPRESS and --squash are compiled by the planner into standard builds and squashes. Used by
/// <c>layertool build</c> (directly or inside a dind container) and by each image of <c>layertool plan run</c>.
/// </summary>
public static class ImageBuilds
{
    /// <summary>Builds <paramref name="options"/> on <paramref name="engine"/>.</summary>
    public static async Task<BuildResult> BuildAsync(DockerConnection engine, BuildOptions options, EngineBuilder builder, BuildReporting reporting,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(reporting);
        var dockerfile = await ReadDockerfileAsync(options, cancellationToken).ConfigureAwait(false);
        var useBuildKit = await ChooseBuildKitAsync(engine, options, dockerfile, builder, reporting.Notice, cancellationToken).ConfigureAwait(false);
        if (!useBuildKit)
            return await new BuildExecutor(new DockerBuildEngine(engine), CreateSquashService(engine, options.CacheDirectory), null, options, reporting.Log)
                .BuildAsync(cancellationToken).ConfigureAwait(false);
        var progress = reporting.CreateProgress();
        try
        {
            var plan = BuildPlanner.Plan(dockerfile, options, Path.GetFileName(options.DockerfilePath ?? "Dockerfile"));
            var planned = plan.Steps.OfType<PlanBuild>().Select(b => b.Build.Dockerfile).ToList();
            using var backend = new BuildKitBackend(engine, new BuildKitBackendOptions(options.ContextDirectory, options.DockerfilePath, options.Pull, planned), progress,
                warning => reporting.Notice($"warning: {warning}"));
            // As the seam's type: the planner's runner takes any backend.
            IBuildBackend standard = backend;
            return await RunPlanAsync(standard, plan, engine, options, reporting.Log, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            (progress as IDisposable)?.Dispose();
        }
    }

    /// <summary>The squash engine behind COMPRESS and --squash; its base indexes are cached next to the build cache.</summary>
    public static EngineSquashService CreateSquashService(DockerConnection connection, string? buildCacheDirectory) =>
        new(new DockerImageEngine(connection),
            new EngineSquashSettings(buildCacheDirectory is null
                ? Path.Combine(Path.GetTempPath(), "layertool-index")
                : Path.Combine(Path.GetDirectoryName(buildCacheDirectory) ?? buildCacheDirectory, "index")));

    /// <summary>
    /// Runs the Dockerfile on a standard-build backend: the planner compiles TAG, COMPRESS and --squash into
    /// standard builds and squashes (one build when there are none), and the runner removes its temporary
    /// tags on success, failure and Ctrl-C.
    /// </summary>
    private static async Task<BuildResult> RunPlanAsync(IBuildBackend backend, BuildPlan plan, DockerConnection engine, BuildOptions options, BuildLog log, CancellationToken cancellationToken)
    {
        var runner = new BuildPlanRunner(backend, CreateSquashService(engine, options.CacheDirectory), new DockerBuildEngine(engine), log) { PullBases = options.Pull };
        var result = await runner.RunAsync(plan, cancellationToken).ConfigureAwait(false);
        if (options.ImageIdFile is not null) await File.WriteAllTextAsync(options.ImageIdFile, result.ImageId, cancellationToken).ConfigureAwait(false);
        return result;
    }

    /// <summary>The Dockerfile's text: <c>-f</c>, else <c>Dockerfile</c> in the context.</summary>
    public static async Task<string> ReadDockerfileAsync(BuildOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var path = options.DockerfilePath ?? Path.Combine(options.ContextDirectory, "Dockerfile");
        if (!File.Exists(path)) throw new BuildException($"cannot read the Dockerfile {path}: it does not exist");
        return await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// BuildKit or classic, decided before anything runs. Under auto, classic (with the reason, one notice) when the
    /// engine has no BuildKit, when the file uses what the engine's frontend lacks and the classic executor has; under
    /// buildkit each is an error instead.
    /// </summary>
    private static async Task<bool> ChooseBuildKitAsync(DockerConnection engine, BuildOptions options, string dockerfile, EngineBuilder choice, Action<string> notice,
        CancellationToken cancellationToken)
    {
        if (choice == EngineBuilder.Classic) return false;
        bool Classic(string reason)
        {
            if (choice == EngineBuilder.BuildKit) throw new BuildException($"--builder buildkit: {reason}");
            notice($"building with the classic builder: {reason}");
            return false;
        }
        var availability = await BuilderProbe.ProbeAsync(engine, cancellationToken).ConfigureAwait(false);
        if (!availability.Available) return Classic(availability.Reason);
        var version = FrontendCheck.ParseEngineVersion(engine.ServerVersion) ?? new Version(0, 0);
        var gaps = FrontendCheck.Check(dockerfile, version);
        var file = Path.GetFileName(options.DockerfilePath ?? "Dockerfile");
        if (gaps.Count == 0)
        {
            // A Dockerfile that must travel in the context (rewritten by the planner, excluded by .dockerignore, or
            // outside the context) would be copied by a COPY of the context's root: the classic executor builds it exactly.
            var planned = options.Squash || DockerfileParser.ParseLenient(dockerfile).Instructions
                .Any(n => n.Keyword is Keywords.Tag or Keywords.Compress);
            if (BuildKitBackend.CopiesContextRoot(dockerfile) && BuildKitBackend.TravelsPrivately(new BuildKitBackendOptions(options.ContextDirectory, options.DockerfilePath), planned))
                return Classic(BuildKitBackend.PrivateDockerfileConflict(file));
            return true;
        }
        if (choice == EngineBuilder.Auto && gaps.All(g => g.ClassicCan))
            return Classic($"the engine's BuildKit (Docker {engine.ServerVersion}) cannot read {file}: {string.Join("; ", gaps)}");
        throw new BuildException($"{file}: the engine's BuildKit (Docker {engine.ServerVersion}) cannot build this Dockerfile: {string.Join("; ", gaps)}"
            + (gaps.Any(g => !g.ClassicCan) ? "" : "; --builder classic can"));
    }
}
