using System.CommandLine;
using LayerTool.Build;
using LayerTool.Build.Execution;
using LayerTool.Build.Frontend;
using LayerTool.Build.Planning;
using LayerTool.Build.Progress;
using LayerTool.Docker;
using LayerTool.Docker.BuildKit;
using LayerTool.Build.Builds;
using LayerTool.Docker.Sweep;
using LayerTool.Docker.Images;
using LayerTool.Docker.Squash;
using LayerTool.Build.Dind;
using LayerTool.Docker.Dind;
using LayerTool.Image;
using LayerTool.Registry;

namespace LayerTool.Cli.Commands;

/// <summary>Which builder runs a build: <c>--builder</c>, else <c>LAYERTOOL_BUILDER</c>, else auto.</summary>
public enum BuilderChoice
{
    /// <summary>The engine's BuildKit when it has it and can read the Dockerfile, else the classic executor.</summary>
    Auto,

    /// <summary>The engine's embedded BuildKit, or an error.</summary>
    BuildKit,

    /// <summary>LayerTool's own step executor.</summary>
    Classic,
}

/// <summary>
/// <c>layertool build [OPTIONS] PATH</c>: docker build's flags, run on the engine's BuildKit or by LayerTool's own
/// step executor (<c>--builder</c>; TAG and COMPRESS on the classic one for now). Progress goes to standard output.
/// </summary>
internal sealed class BuildCommand : Command
{
    private readonly CliContext _context;
    private readonly Func<string, string?> _environment;
    private readonly RegistryCliSymbols _registry = new(forSideUse: true, withMirrors: false);

    public BuildCommand(CliContext context, Func<string, string?> environment)
        : base("build", "Build an image from a Dockerfile, with TAG and COMPRESS.")
    {
        _context = context ?? throw new ArgumentNullException(nameof(context));
        _environment = environment ?? throw new ArgumentNullException(nameof(environment));
        Add(ContextArgument);
        Add(FileOption);
        Add(TagOption);
        Add(BuildArgOption);
        Add(TargetOption);
        Add(NetworkOption);
        Add(NoCacheOption);
        Add(PullOption);
        Add(QuietOption);
        Add(IidFileOption);
        Add(LabelOption);
        Add(ProgressOption);
        Add(SquashOption);
        Add(DindOption);
        Add(DindImageOption);
        Add(BuilderOption);
        Add(PlanOption);
        Add(PushOption);
        _registry.AddTo(this);
        Add(NoBaseLabelsOption);
        ProgressOption.AcceptOnlyFromAmong("auto", "plain", "tty", "json", "quiet");
        BuilderOption.AcceptOnlyFromAmong("auto", "buildkit", "classic");
        SetAction((result, ct) => CommandErrors.RunAsync(context, c => ExecuteAsync(Bind(result), DindCommand.WithImageSource(BindDind(result), context.WorkingDirectory), BindBuilder(result), context, c, BindPush(result)), ct));
    }

    public Argument<string> ContextArgument { get; } = new("PATH") { Description = "The build context directory." };

    public Option<string?> FileOption { get; } = new("--file", "-f") { Description = "The Dockerfile (default: PATH/Dockerfile).", HelpName = "FILE" };

    public Option<string[]> TagOption { get; } = new("--tag", "-t") { Description = "Name the image, name:tag; repeatable.", HelpName = "NAME" };

    public Option<string[]> BuildArgOption { get; } = new("--build-arg") { Description = "A build argument, NAME=VALUE (or NAME to take it from the environment); repeatable.", HelpName = "NAME=VALUE" };

    public Option<string?> TargetOption { get; } = new("--target") { Description = "The stage to build (and only the stages it needs).", HelpName = "STAGE" };

    public Option<string?> NetworkOption { get; } = new("--network") { Description = "Network mode for RUN (default: the engine's default).", HelpName = "MODE" };

    public Option<bool> NoCacheOption { get; } = new("--no-cache") { Description = "Do not use the build cache." };

    public Option<bool> PullOption { get; } = new("--pull") { Description = "Always pull the FROM images." };

    public Option<bool> QuietOption { get; } = new("--quiet", "-q") { Description = "Print only the image ID." };

    public Option<string?> IidFileOption { get; } = new("--iidfile") { Description = "Write the image ID to this file.", HelpName = "FILE" };

    public Option<string[]> LabelOption { get; } = new("--label") { Description = "A label for the image, KEY=VALUE; repeatable.", HelpName = "KEY=VALUE" };

    public Option<string> ProgressOption { get; } = new("--progress") { Description = "Output: auto (tty on a terminal, else plain), plain, tty, json or quiet.", DefaultValueFactory = _ => "auto" };

    public Option<string?> BuilderOption { get; } = new("--builder") { Description = "auto (the engine's BuildKit when it has it, else classic), buildkit or classic (default: $LAYERTOOL_BUILDER, else auto).", HelpName = "BUILDER" };

    /// <summary>The builder and the progress style of one invocation (nothing runs).</summary>
    public BuilderSelection BindBuilder(ParseResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var given = result.GetValue(BuilderOption);
        var fromEnvironment = _environment("LAYERTOOL_BUILDER");
        var text = given ?? (string.IsNullOrWhiteSpace(fromEnvironment) ? "auto" : fromEnvironment.Trim().ToLowerInvariant());
        var choice = text switch
        {
            "auto" => BuilderChoice.Auto,
            "buildkit" => BuilderChoice.BuildKit,
            "classic" => BuilderChoice.Classic,
            _ => throw new CliException($"LAYERTOOL_BUILDER={fromEnvironment}: expected auto, buildkit or classic"),
        };
        return new BuilderSelection(choice, result.GetValue(ProgressOption) ?? "auto", result.GetValue(PlanOption));
    }

    public Option<string[]> PushOption { get; } = new("--push")
    {
        Description = "After a successful build, push the image to this registry reference (as `layertool push IMAGE REF`); repeatable.",
        HelpName = "REF",
    };

    /// <summary>The pushes of one invocation, or null without <c>--push</c> (nothing runs).</summary>
    public BuildPush? BindPush(ParseResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var references = result.GetValue(PushOption) ?? [];
        return references.Length == 0 ? null : new BuildPush(references, _registry.Bind(result, _context, _environment));
    }

    public Option<bool> PlanOption { get; } = new("--plan") { Description = "Print the standard builds and squashes that TAG, COMPRESS and --squash compile to (BuildKit), and run nothing; JSON with --progress json." };

    public Option<bool> NoBaseLabelsOption { get; } = new("--no-base-labels")
    {
        Description = "Do not record the final stage's FROM image as the labels org.opencontainers.image.base.name/.base.digest (which layertool rebase reads).",
    };

    public Option<bool> SquashOption { get; } = new("--squash") { Description = "Squash the new layers onto the target stage's FROM image at the end (COMPRESS)." };

    public Option<bool> DindOption { get; } = new("--dind") { Description = "Build in a throw-away Docker-in-Docker container and bring the images back." };

    public Option<string?> DindImageOption { get; } = new("--dind-image") { Description = $"The dind image for --dind (default: {DindOptions.DefaultImage}; see `layertool dind build-image`).", HelpName = "IMAGE" };

    /// <summary>The dind container of one invocation, or null for a direct build (nothing runs).</summary>
    public DindOptions? BindDind(ParseResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var image = result.GetValue(DindImageOption);
        return result.GetValue(DindOption) || image is not null ? new DindOptions(image ?? DindOptions.DefaultImage) : null;
    }

    /// <summary>The options record of one invocation (nothing runs).</summary>
    public BuildOptions Bind(ParseResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var contextDir = Path.GetFullPath(result.GetValue(ContextArgument) ?? ".", _context.WorkingDirectory);
        var file = result.GetValue(FileOption);
        return new BuildOptions(
            ContextDirectory: contextDir,
            DockerfilePath: file is null ? null : Path.GetFullPath(file, _context.WorkingDirectory),
            Tags: result.GetValue(TagOption) ?? [],
            BuildArgs: ParseBuildArgs(result.GetValue(BuildArgOption) ?? [], _environment),
            Target: result.GetValue(TargetOption),
            NetworkMode: result.GetValue(NetworkOption),
            NoCache: result.GetValue(NoCacheOption),
            Pull: result.GetValue(PullOption),
            Quiet: result.GetValue(QuietOption) || result.GetValue(ProgressOption) == "quiet",
            ImageIdFile: result.GetValue(IidFileOption) is { } iid ? Path.GetFullPath(iid, _context.WorkingDirectory) : null,
            Labels: ParseLabels(result.GetValue(LabelOption) ?? []),
            Progress: result.GetValue(ProgressOption) switch { "json" => ProgressMode.Json, "plain" => ProgressMode.Plain, _ => ProgressMode.Auto },
            Squash: result.GetValue(SquashOption),
            CacheDirectory: CacheDirectory(_environment))
        {
            RecordBase = !result.GetValue(NoBaseLabelsOption),
        };
    }

    /// <summary><c>K=V</c> as given; a bare <c>K</c> takes the variable from the environment, or is dropped when unset (as docker).</summary>
    public static IReadOnlyDictionary<string, string> ParseBuildArgs(IEnumerable<string> values, Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(values);
        ArgumentNullException.ThrowIfNull(environment);
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var v in values)
        {
            var eq = v.IndexOf('=', StringComparison.Ordinal);
            if (eq >= 0) result[v[..eq]] = v[(eq + 1)..];
            else if (environment(v) is { } fromEnv) result[v] = fromEnv;
        }
        return result;
    }

    public static IReadOnlyDictionary<string, string> ParseLabels(IEnumerable<string> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var v in values)
        {
            var eq = v.IndexOf('=', StringComparison.Ordinal);
            result[eq < 0 ? v : v[..eq]] = eq < 0 ? "" : v[(eq + 1)..];
        }
        return result;
    }

    /// <summary><c>$XDG_CACHE_HOME/layertool/build</c>, else <c>~/.cache/layertool/build</c>.</summary>
    public static string CacheDirectory(Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        var xdg = environment("XDG_CACHE_HOME");
        var root = !string.IsNullOrEmpty(xdg) ? xdg : Path.Combine(environment("HOME") ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "layertool", "build");
    }

    public static Task<int> ExecuteAsync(BuildOptions options, CliContext context, CancellationToken cancellationToken) =>
        ExecuteAsync(options, null, new BuilderSelection(BuilderChoice.Classic, "auto"), context, cancellationToken);

    public static Task<int> ExecuteAsync(BuildOptions options, DindOptions? dind, CliContext context, CancellationToken cancellationToken) =>
        ExecuteAsync(options, dind, new BuilderSelection(BuilderChoice.Classic, "auto"), context, cancellationToken);

    /// <summary>Builds directly, or with <paramref name="dind"/> in a throw-away dind container, on the builder <paramref name="builder"/> picks.</summary>
    public static async Task<int> ExecuteAsync(BuildOptions options, DindOptions? dind, BuilderSelection builder, CliContext context, CancellationToken cancellationToken,
        BuildPush? push = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(context);
        // Checked before anything is built: a bad reference is a usage mistake, not a build failure.
        var targets = push?.References.Select(PullCommand.ParseReference).ToList() ?? [];
        if (builder.PlanOnly)
        {
            // The plan is pure: no engine is asked.
            var text = await ReadDockerfileAsync(options, cancellationToken).ConfigureAwait(false);
            var plan = BuildPlanner.Plan(text, options, Path.GetFileName(options.DockerfilePath ?? "Dockerfile"));
            await context.Out.WriteAsync(builder.Progress == "json" ? BuildPlanFormatter.Json(plan) : BuildPlanFormatter.Text(plan)).ConfigureAwait(false);
            return CommandErrors.Success;
        }
        using var connection = await EngineAccess.ConnectAsync(context, cancellationToken).ConfigureAwait(false);
        // The build's containers are named after this process, so that a run after a kill can remove them.
        options = options with { BuildId = options.BuildId ?? ProcessOwner.NewId() };
        var log = new BuildLog(context.Out, options.Progress, options.Quiet);
        // The builder is chosen against the engine that runs the build: with --dind, the inner one.
        Task<BuildResult> Build(DockerConnection engine, BuildOptions o, CancellationToken token) =>
            ImageBuilds.BuildAsync(engine, o, ToEngineBuilder(builder.Choice),
                new BuildReporting(log, () => CreateProgress(o, builder.Progress, context), notice => context.Error.WriteLine($"layertool: {notice}")), token);
        BuildResult result;
        if (dind is null)
        {
            result = await Build(connection, options, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            var inDind = await DindBuild.BuildAsync(connection, dind, options, Build, new DindCommand.LineLog(context.Error), cancellationToken).ConfigureAwait(false);
            result = inDind.Build;
            await context.Error.WriteLineAsync($"dind: start {inDind.Start.TotalSeconds:0.0}s, images in {inDind.Provide.TotalSeconds:0.0}s, build {inDind.BuildTime.TotalSeconds:0.0}s, images out {inDind.BringBack.TotalSeconds:0.0}s, cleanup {inDind.Cleanup.TotalSeconds:0.0}s").ConfigureAwait(false);
        }
        // The image pushed from the engine that holds it (with --dind, brought back to this one), as `layertool push` does.
        var pushed = new List<(ImageReference Target, PushResult Result)>();
        foreach (var target in targets)
        {
            pushed.Add((target, await RegistryPush.PushEngineImageAsync(connection, result.ImageId, target, push!.Registry, null, context, cancellationToken).ConfigureAwait(false)));
        }
        if (options.Quiet)
        {
            await context.Out.WriteLineAsync(result.ImageId).ConfigureAwait(false);
            foreach (var (target, done) in pushed)
                await context.Error.WriteLineAsync($"{RegistryPush.Summary(target, done)}; digest {done.Digest}").ConfigureAwait(false);
            return CommandErrors.Success;
        }
        foreach (var (target, done) in pushed)
            log.Line($"{RegistryPush.Summary(target, done)}; digest {done.Digest}");
        foreach (var t in result.TaggedImages) log.Line($"TAG {t.Reference} -> {BuildLog.ShortId(t.ImageId)} (line {t.Line})");
        foreach (var c in result.Compressions)
            log.Line($"COMPRESS (line {c.Line}): {c.LayersBefore} layers, {c.BytesBefore} bytes -> {c.LayersAfter} layers, {c.BytesAfter} bytes ({BuildLog.ShortId(c.ImageId)})");
        log.Line($"{result.Steps} steps, {result.CachedSteps} from cache");
        return CommandErrors.Success;
    }

    private static async Task<string> ReadDockerfileAsync(BuildOptions options, CancellationToken cancellationToken)
    {
        var path = options.DockerfilePath ?? Path.Combine(options.ContextDirectory, "Dockerfile");
        if (!File.Exists(path)) throw new CliException($"cannot read the Dockerfile {path}: it does not exist");
        return await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The library's name for a builder choice.</summary>
    internal static EngineBuilder ToEngineBuilder(BuilderChoice choice) => choice switch
    {
        BuilderChoice.BuildKit => EngineBuilder.BuildKit,
        BuilderChoice.Classic => EngineBuilder.Classic,
        _ => EngineBuilder.Auto,
    };

    /// <summary>The BuildKit progress renderer: quiet, json, plain, or tty (auto: tty when standard output is a terminal).</summary>
    private static IBuildKitProgress CreateProgress(BuildOptions options, string progress, CliContext context)
    {
        if (options.Quiet) return new QuietProgress();
        var terminal = ReferenceEquals(context.Out, Console.Out) && !Console.IsOutputRedirected;
        return progress switch
        {
            "json" => new JsonProgress(context.Out),
            "plain" => new PlainProgress(context.Out),
            "tty" => new TtyProgress(context.Out, terminal ? Console.WindowHeight : 40),
            _ => terminal ? new TtyProgress(context.Out, Console.WindowHeight) : new PlainProgress(context.Out),
        };
    }
}

/// <summary>Where <c>build --push</c> pushes the built image, and the registry settings for it.</summary>
/// <param name="References">The references given with <c>--push</c>.</param>
/// <param name="Registry">Credentials, plain-HTTP hosts and parallel uploads.</param>
public sealed record BuildPush(IReadOnlyList<string> References, RegistryCliOptions Registry);

/// <summary>The builder a build runs on and the progress style for BuildKit builds (<c>--progress</c> as given).</summary>
/// <param name="Choice">auto, buildkit or classic.</param>
/// <param name="Progress">The <c>--progress</c> value as given.</param>
/// <param name="PlanOnly"><c>--plan</c>: print the plan and run nothing.</param>
public sealed record BuilderSelection(BuilderChoice Choice, string Progress, bool PlanOnly = false);
