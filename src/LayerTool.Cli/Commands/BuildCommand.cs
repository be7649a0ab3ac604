using System.CommandLine;
using LayerTool.Build;
using LayerTool.Build.Execution;
using LayerTool.Docker;
using LayerTool.Docker.Sweep;
using LayerTool.Docker.Images;
using LayerTool.Docker.Squash;
using LayerTool.Docker.Dind;

namespace LayerTool.Cli.Commands;

/// <summary>
/// <c>layertool build [OPTIONS] PATH</c>: docker build's flags, executed instruction by instruction by
/// LayerTool's own builder (TAG and COMPRESS included). Progress goes to standard output, as docker's.
/// </summary>
internal sealed class BuildCommand : Command
{
    private readonly CliContext _context;
    private readonly Func<string, string?> _environment;

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
        ProgressOption.AcceptOnlyFromAmong("auto", "plain", "json");
        SetAction((result, ct) => CommandErrors.RunAsync(context, c => ExecuteAsync(Bind(result), BindDind(result), context, c), ct));
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

    public Option<string> ProgressOption { get; } = new("--progress") { Description = "Output: auto, plain or json.", DefaultValueFactory = _ => "auto" };

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
            Quiet: result.GetValue(QuietOption),
            ImageIdFile: result.GetValue(IidFileOption) is { } iid ? Path.GetFullPath(iid, _context.WorkingDirectory) : null,
            Labels: ParseLabels(result.GetValue(LabelOption) ?? []),
            Progress: result.GetValue(ProgressOption) switch { "json" => ProgressMode.Json, "plain" => ProgressMode.Plain, _ => ProgressMode.Auto },
            Squash: result.GetValue(SquashOption),
            CacheDirectory: CacheDirectory(_environment));
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

    /// <summary>The squash engine behind COMPRESS and --squash; its base indexes are cached next to the build cache.</summary>
    private static EngineSquashService CreateSquashService(DockerConnection connection, string? buildCacheDirectory) =>
        new EngineSquashService(new DockerImageEngine(connection),
            new EngineSquashSettings(buildCacheDirectory is null
                ? Path.Combine(Path.GetTempPath(), "layertool-index")
                : Path.Combine(Path.GetDirectoryName(buildCacheDirectory) ?? buildCacheDirectory, "index")));

    public static Task<int> ExecuteAsync(BuildOptions options, CliContext context, CancellationToken cancellationToken) =>
        ExecuteAsync(options, null, context, cancellationToken);

    /// <summary>Builds directly, or with <paramref name="dind"/> in a throw-away dind container.</summary>
    public static async Task<int> ExecuteAsync(BuildOptions options, DindOptions? dind, CliContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        using var connection = await EngineAccess.ConnectAsync(context, cancellationToken).ConfigureAwait(false);
        // The build's containers are named after this process, so that a run after a kill can remove them.
        options = options with { BuildId = options.BuildId ?? ProcessOwner.NewId() };
        var log = new BuildLog(context.Out, options.Progress, options.Quiet);
        Task<BuildResult> Build(DockerConnection engine, BuildOptions o, CancellationToken token) =>
            new BuildExecutor(new DockerBuildEngine(engine), CreateSquashService(engine, o.CacheDirectory), null, o, log).BuildAsync(token);
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
        if (options.Quiet)
        {
            await context.Out.WriteLineAsync(result.ImageId).ConfigureAwait(false);
            return CommandErrors.Success;
        }
        foreach (var t in result.TaggedImages) log.Line($"TAG {t.Reference} -> {BuildLog.ShortId(t.ImageId)} (line {t.Line})");
        foreach (var c in result.Compressions)
            log.Line($"COMPRESS (line {c.Line}): {c.LayersBefore} layers, {c.BytesBefore} bytes -> {c.LayersAfter} layers, {c.BytesAfter} bytes ({BuildLog.ShortId(c.ImageId)})");
        log.Line($"{result.Steps} steps, {result.CachedSteps} from cache");
        return CommandErrors.Success;
    }
}
