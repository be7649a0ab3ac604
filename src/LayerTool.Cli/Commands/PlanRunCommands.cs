using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using LayerTool.Build.Plans;
using LayerTool.Build.Plans.Run;
using LayerTool.Docker;
using LayerTool.Build.Builds;
using LayerTool.Docker.Dind;
using LayerTool.Docker.Plans;
using LayerTool.Registry;

namespace LayerTool.Cli.Commands;

/// <summary>What <c>layertool plan run</c> was asked to do.</summary>
/// <param name="PlanPath">The plan file, a full path.</param>
/// <param name="Jobs"><c>--jobs</c>; null: one build per engine.</param>
/// <param name="Engines"><c>--engine</c> values, in order.</param>
/// <param name="Dind"><c>--dind N</c>.</param>
/// <param name="DindImage"><c>--dind-image</c>.</param>
/// <param name="Registry"><c>--registry</c>; null: the plan's, else image transfer.</param>
/// <param name="Progress">auto, plain, tty or json.</param>
/// <param name="NoCache"><c>--no-cache</c>.</param>
/// <param name="Builder"><c>--builder</c>.</param>
/// <param name="NetworkMode"><c>--network</c>.</param>
public sealed record PlanRunCliOptions(string PlanPath, int? Jobs, IReadOnlyList<string> Engines, int Dind, string DindImage, string? Registry, string Progress,
    bool NoCache, BuilderChoice Builder, string? NetworkMode);

/// <summary>
/// <c>layertool plan run FILE</c> and <c>layertool plan status FILE</c>: the execution half of <c>layertool plan</c>
/// (<see cref="PlanRunner"/>), added to the <c>plan</c> command in PlanCommand.Run.cs.
/// </summary>
internal sealed class PlanRunCommands
{
    private readonly CliContext _context;
    private readonly Func<string, string?> _environment;

    public PlanRunCommands(CliContext context, Func<string, string?> environment)
    {
        _context = context ?? throw new ArgumentNullException(nameof(context));
        _environment = environment ?? throw new ArgumentNullException(nameof(environment));
        Run = CreateRun();
        Status = CreateStatus();
    }

    public Command Run { get; }

    public Command Status { get; }

    public Argument<string> FileArgument { get; } = new("FILE") { Description = "The plan file (YAML)." };

    public Option<int?> JobsOption { get; } = new("--jobs", "-j") { Description = "Builds at once (default: the number of engines).", HelpName = "N" };

    public Option<string[]> EngineOption { get; } = new("--engine") { Description = "Build on this engine: a DOCKER_HOST URL or a docker context name; repeatable (default: the local engine).", HelpName = "HOST|CONTEXT" };

    public Option<int> DindOption { get; } = new("--dind") { Description = "Build on N throw-away Docker-in-Docker engines, started when first needed and removed at the end.", HelpName = "N" };

    public Option<string?> DindImageOption { get; } = new("--dind-image") { Description = $"The dind image for --dind (default: {DindOptions.DefaultImage}).", HelpName = "IMAGE" };

    public Option<string?> RegistryOption { get; } = new("--registry") { Description = "Hand parents to children on other engines through this registry repository prefix (push by digest, FROM repo@digest); default: the plan's registry, else image transfer.", HelpName = "REPO" };

    public Option<string> ProgressOption { get; } = new("--progress") { Description = "Output: auto (a live line per image on a terminal, else plain), plain, tty or json.", DefaultValueFactory = _ => "auto" };

    public Option<bool> NoCacheOption { get; } = new("--no-cache") { Description = "Build every image, without the builders' caches." };

    public Option<string?> BuilderOption { get; } = new("--builder") { Description = "auto, buildkit or classic, as for layertool build (default: $LAYERTOOL_BUILDER, else auto).", HelpName = "BUILDER" };

    public Option<string?> NetworkOption { get; } = new("--network") { Description = "Network mode for RUN (default: the engine's; host on dind engines).", HelpName = "MODE" };

    private Command CreateRun()
    {
        var command = new Command("run", "Build the plan's images in dependency order, in parallel across engines, skipping those that are up to date.")
        {
            FileArgument, JobsOption, EngineOption, DindOption, DindImageOption, RegistryOption, ProgressOption, NoCacheOption, BuilderOption, NetworkOption,
        };
        ProgressOption.AcceptOnlyFromAmong("auto", "plain", "tty", "json");
        BuilderOption.AcceptOnlyFromAmong("auto", "buildkit", "classic");
        command.Validators.Add(result =>
        {
            if (result.GetValue(JobsOption) is < 1) result.AddError("--jobs must be at least 1");
            if (result.GetValue(DindOption) < 0) result.AddError("--dind must not be negative");
        });
        command.SetAction((result, ct) => CommandErrors.RunAsync(_context, c => ExecuteRunAsync(Bind(result), c), ct));
        return command;
    }

    private Command CreateStatus()
    {
        var file = new Argument<string>("FILE") { Description = "The plan file (YAML)." };
        var registry = new Option<string?>("--registry") { Description = "The registry repository prefix, as given to plan run.", HelpName = "REPO" };
        var json = new Option<bool>("--json") { Description = "One JSON object per image." };
        var command = new Command("status", "Say for each image of the plan whether it is up to date, stale (and why) or missing.") { file, registry, json };
        command.SetAction((result, ct) => CommandErrors.RunAsync(_context,
            c => ExecuteStatusAsync(Path.GetFullPath(result.GetValue(file)!, _context.WorkingDirectory), result.GetValue(registry), result.GetValue(json), c), ct));
        return command;
    }

    /// <summary>The options of one <c>plan run</c> (nothing runs).</summary>
    public PlanRunCliOptions Bind(ParseResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var builderText = result.GetValue(BuilderOption) ?? _environment("LAYERTOOL_BUILDER")?.Trim().ToLowerInvariant();
        var builder = builderText switch
        {
            null or "" or "auto" => BuilderChoice.Auto,
            "buildkit" => BuilderChoice.BuildKit,
            "classic" => BuilderChoice.Classic,
            _ => throw new CliException($"LAYERTOOL_BUILDER={builderText}: expected auto, buildkit or classic"),
        };
        return new PlanRunCliOptions(
            Path.GetFullPath(result.GetValue(FileArgument)!, _context.WorkingDirectory),
            result.GetValue(JobsOption),
            result.GetValue(EngineOption) ?? [],
            result.GetValue(DindOption),
            result.GetValue(DindImageOption) ?? DindOptions.DefaultImage,
            result.GetValue(RegistryOption),
            result.GetValue(ProgressOption) ?? "auto",
            result.GetValue(NoCacheOption),
            builder,
            result.GetValue(NetworkOption));
    }

    /// <summary>The runner's view of a plan: its images in file order, each with its parents and its references from the graph.</summary>
    internal static IReadOnlyList<PlanRunImage> RunImages(PlanGraph graph) =>
        [.. graph.Plan.Images.Select(image =>
        {
            var references = graph.References(image.Name);
            return new PlanRunImage(image,
                [.. graph.Parents(image.Name).Select(p => p.Name)],
                references.GroupBy(r => r.Reference, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First().Parent, StringComparer.Ordinal),
                (text, replacement) => PlanDockerfileRewriter.Rewrite(text, references, replacement));
        })];

    private PlanRunOptions RunnerOptions(PlanFile plan, string? registry, int? jobs, IReadOnlyList<string> engines, int dind, DindOptions? dindOptions, bool noCache,
        BuilderChoice builder, string? network)
    {
        var effectiveRegistry = registry ?? plan.Registry;
        var settings = new RegistryCliOptions(6, null, [], [], null, RegistryCliSymbols.DefaultCache(_environment), RegistryCliSymbols.DockerConfigPath(_environment), "none")
            .ToSettings(effectiveRegistry is null ? "docker.io" : LayerTool.Image.ImageReference.Parse(effectiveRegistry + "/x").Registry, null);
        var cacheRoot = Path.GetDirectoryName(BuildCommand.CacheDirectory(_environment))!;
        return new PlanRunOptions(jobs, engines, dind, dindOptions, registry, new PlanRegistry(settings), noCache, BuildCommand.ToEngineBuilder(builder), network,
            BuildCommand.CacheDirectory(_environment), Path.Combine(cacheRoot, "plans"), _context.TempDirectory);
    }

    private async Task<int> ExecuteRunAsync(PlanRunCliOptions options, CancellationToken cancellationToken)
    {
        var graph = PlanGraph.Load(options.PlanPath);
        var dind = options.Dind > 0 ? DindCommand.WithImageSource(new DindOptions(options.DindImage), _context.WorkingDirectory) : null;
        var runnerOptions = RunnerOptions(graph.Plan, options.Registry, options.Jobs, options.Engines, options.Dind, dind, options.NoCache, options.Builder, options.NetworkMode);
        var runner = new PlanRunner(graph.Plan, RunImages(graph), PlanInputHash.ComputeAsync, runnerOptions, new DindCommand.LineLog(_context.Error));
        using var home = await EngineAccess.ConnectAsync(_context, cancellationToken).ConfigureAwait(false);
        var terminal = ReferenceEquals(_context.Out, Console.Out) && !Console.IsOutputRedirected;
        var style = options.Progress switch
        {
            "json" => PlanProgressStyle.Json,
            "plain" => PlanProgressStyle.Plain,
            "tty" => PlanProgressStyle.Tty,
            _ => terminal ? PlanProgressStyle.Tty : PlanProgressStyle.Plain,
        };
        IReadOnlyList<string> engines = [];
        PlanProgress? progress = null;
        PlanRunSummary summary;
        try
        {
            summary = await runner.RunAsync(home, new ForwardingProgress(() => progress), names =>
            {
                engines = names;
                progress = new PlanProgress(_context.Out, style, [.. graph.Plan.Images.Select(i => i.Name)], names);
            }, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            progress?.Dispose();
        }
        await _context.Out.WriteAsync(style == PlanProgressStyle.Json ? PlanProgress.SummaryJson(summary, engines) + "\n" : PlanProgress.Summary(summary, engines))
            .ConfigureAwait(false);
        if (summary.Cancelled) throw new OperationCanceledException(cancellationToken);
        return summary.Succeeded ? CommandErrors.Success : CommandErrors.Failure;
    }

    private async Task<int> ExecuteStatusAsync(string planPath, string? registry, bool json, CancellationToken cancellationToken)
    {
        var graph = PlanGraph.Load(planPath);
        var runner = new PlanRunner(graph.Plan, RunImages(graph), PlanInputHash.ComputeAsync,
            RunnerOptions(graph.Plan, registry, null, [], 0, null, false, BuilderChoice.Auto, null), null);
        using var home = await EngineAccess.ConnectAsync(_context, cancellationToken).ConfigureAwait(false);
        var lines = await runner.StatusAsync(home, cancellationToken).ConfigureAwait(false);
        var width = Math.Max(5, lines.Count == 0 ? 0 : lines.Max(l => l.Name.Length));
        foreach (var line in lines)
        {
            var word = line.Status switch { PlanImageStatus.UpToDate => "up to date", PlanImageStatus.Stale => "stale", _ => "missing" };
            if (json)
            {
                await _context.Out.WriteLineAsync(JsonSerializer.Serialize(new PlanStatusJson(line.Name, word, line.Reason, line.ImageId), PlanCliJson.Default.PlanStatusJson))
                    .ConfigureAwait(false);
                continue;
            }
            var id = line.ImageId is { } i ? " " + Build.BuildLog.ShortId(i) : "";
            await _context.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"{line.Name.PadRight(width)}  {word,-10}{(line.Status == PlanImageStatus.UpToDate ? id : "  " + line.Reason)}")).ConfigureAwait(false);
        }
        return CommandErrors.Success;
    }

    /// <summary>Forwards to a renderer made once the pool's engines are known.</summary>
    private sealed class ForwardingProgress(Func<PlanProgress?> target) : IProgress<PlanEvent>
    {
        public void Report(PlanEvent value) => target()?.Report(value);
    }
}

/// <summary>The plan runner's registry: LayerTool's registry client and pusher.</summary>
internal sealed class PlanRegistry(RegistrySettings settings) : IPlanRegistry
{
    public async Task<string> PushAsync(LayerTool.Image.IImage image, string repository, IReadOnlyList<string> tags, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tags);
        if (tags.Count == 0) throw new ArgumentException("a push needs a tag", nameof(tags));
        using var client = new RegistryClient(settings);
        var pusher = new ImagePusher(client);
        var target = LayerTool.Image.ImageReference.Parse(repository);
        string? digest = null;
        foreach (var tag in tags)
            digest = (await pusher.PushAsync(image, target.WithTag(tag), cancellationToken).ConfigureAwait(false)).Digest.ToString();
        return digest!;
    }

    public async Task<string?> CheckAsync(string reference, CancellationToken cancellationToken)
    {
        using var client = new RegistryClient(settings);
        try
        {
            await client.GetManifestAsync(LayerTool.Image.ImageReference.Parse(reference), cancellationToken).ConfigureAwait(false);
            return null;
        }
        catch (RegistryException e)
        {
            return PlanScheduler.FirstLine(e.Message);
        }
    }
}

/// <summary>One line of <c>layertool plan status --json</c>.</summary>
internal sealed record PlanStatusJson(string Image, string Status, string? Reason, string? Id);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(PlanStatusJson))]
internal sealed partial class PlanCliJson : JsonSerializerContext;
