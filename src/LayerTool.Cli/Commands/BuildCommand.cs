using System.CommandLine;
using LayerTool.Build;
using LayerTool.Build.Execution;
using LayerTool.Docker;

namespace LayerTool.Cli.Commands;

/// <summary><c>layertool build [OPTIONS] PATH</c>: docker build's flags, executed by LayerTool's own builder.</summary>
public static class BuildCommand
{
    public static Command Create(CliContext cli, Func<BuildOptions, TextWriter, CancellationToken, Task<int>>? run = null)
    {
        ArgumentNullException.ThrowIfNull(cli);
        var output = cli.Out;
        var context = new Argument<string>("PATH") { Description = "The build context directory" };
        var file = new Option<string?>("--file", "-f") { Description = "Name of the Dockerfile (default: PATH/Dockerfile)" };
        var tags = new Option<string[]>("--tag", "-t") { Description = "Name and optionally a tag in the name:tag format (repeatable)", AllowMultipleArgumentsPerToken = false };
        var buildArgs = new Option<string[]>("--build-arg") { Description = "Set build-time variables (K=V, or K to take it from the environment)" };
        var target = new Option<string?>("--target") { Description = "Set the target build stage to build" };
        var network = new Option<string?>("--network") { Description = "Networking mode for the RUN instructions (default: the engine's default)" };
        var noCache = new Option<bool>("--no-cache") { Description = "Do not use cache when building the image" };
        var pull = new Option<bool>("--pull") { Description = "Always attempt to pull a newer version of the image" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Suppress the build output and print image ID on success" };
        var iidFile = new Option<string?>("--iidfile") { Description = "Write the image ID to the file" };
        var labels = new Option<string[]>("--label") { Description = "Set metadata for an image (K=V)" };
        var progress = new Option<string>("--progress") { Description = "Output format: auto, plain or json", DefaultValueFactory = _ => "auto" };
        progress.AcceptOnlyFromAmong("auto", "plain", "json");
        var squash = new Option<bool>("--squash") { Description = "Squash the new layers onto the target stage's FROM image (COMPRESS at the end)" };
        var dind = new Option<bool>("--dind") { Description = "Build in a throw-away Docker-in-Docker container; bring the images back" };
        var dindImage = new Option<string?>("--dind-image") { Description = $"The dind image for --dind (default: {Docker.Dind.DindOptions.DefaultImage}; see `layertool dind build-image`)" };

        var command = new Command("build", "Build an image from a Dockerfile (with TAG and COMPRESS)")
        {
            context, file, tags, buildArgs, target, network, noCache, pull, quiet, iidFile, labels, progress, squash, dind, dindImage,
        };
        command.SetAction((parse, ct) =>
        {
            var options = new BuildOptions(
                ContextDirectory: parse.GetValue(context)!,
                DockerfilePath: parse.GetValue(file) is { } f ? ResolveDockerfile(parse.GetValue(context)!, f) : null,
                Tags: parse.GetValue(tags) ?? [],
                BuildArgs: ParseBuildArgs(parse.GetValue(buildArgs) ?? [], Environment.GetEnvironmentVariable),
                Target: parse.GetValue(target),
                NetworkMode: parse.GetValue(network),
                NoCache: parse.GetValue(noCache),
                Pull: parse.GetValue(pull),
                Quiet: parse.GetValue(quiet),
                ImageIdFile: parse.GetValue(iidFile),
                Labels: ParseLabels(parse.GetValue(labels) ?? []),
                Progress: parse.GetValue(progress) switch { "json" => ProgressMode.Json, "plain" => ProgressMode.Plain, _ => ProgressMode.Auto },
                Squash: parse.GetValue(squash),
                CacheDirectory: DefaultCacheDirectory());
            var dindOptions = parse.GetValue(dind) || parse.GetValue(dindImage) is not null
                ? new Docker.Dind.DindOptions(parse.GetValue(dindImage) ?? Docker.Dind.DindOptions.DefaultImage)
                : null;
            return CommandErrors.RunAsync(cli, token => (run ?? ((o, w, t) => RunAsync(o, dindOptions, w, cli.Error, t)))(options, output, token), ct);
        });
        return command;
    }

    /// <summary>docker resolves <c>-f</c> relative to the current directory.</summary>
    private static string ResolveDockerfile(string context, string file) => Path.GetFullPath(file);

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

    private static string DefaultCacheDirectory()
    {
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var root = !string.IsNullOrEmpty(xdg) ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "layertool", "build");
    }

    /// <summary>The squash engine behind COMPRESS and --squash; null until the engine adapter is part of this build.</summary>
    private static Build.Squash.ISquashService? CreateSquashService(DockerConnection connection) => connection is null ? null : null;

    private static async Task<int> RunAsync(BuildOptions options, Docker.Dind.DindOptions? dind, TextWriter output, TextWriter error, CancellationToken ct)
    {
        using var connection = await DockerConnection.ConnectAsync(new EngineSettings(), ct).ConfigureAwait(false);
        var log = new BuildLog(output, options.Progress, options.Quiet);
        Task<BuildResult> Build(DockerConnection engine, BuildOptions o, CancellationToken token) =>
            new BuildExecutor(new DockerBuildEngine(engine), CreateSquashService(engine), null, o, log).BuildAsync(token);
        BuildResult result;
        if (dind is null)
        {
            result = await Build(connection, options, ct).ConfigureAwait(false);
        }
        else
        {
            var dindResult = await Docker.Dind.DindBuild.BuildAsync(connection, dind, options, Build, new DindCommand.LineLog(error), ct).ConfigureAwait(false);
            result = dindResult.Build;
            await error.WriteLineAsync($"dind: start {dindResult.Start.TotalSeconds:0.0}s, images in {dindResult.Provide.TotalSeconds:0.0}s, build {dindResult.BuildTime.TotalSeconds:0.0}s, images out {dindResult.BringBack.TotalSeconds:0.0}s, cleanup {dindResult.Cleanup.TotalSeconds:0.0}s").ConfigureAwait(false);
        }
        if (options.Quiet) await output.WriteLineAsync(result.ImageId).ConfigureAwait(false);
        else
        {
            foreach (var t in result.TaggedImages) log.Line($"TAG {t.Reference} -> {BuildLog.ShortId(t.ImageId)} (line {t.Line})");
            foreach (var c in result.Compressions)
                log.Line($"COMPRESS (line {c.Line}): {c.LayersBefore} layers, {c.BytesBefore} bytes -> {c.LayersAfter} layers, {c.BytesAfter} bytes ({BuildLog.ShortId(c.ImageId)})");
            log.Line($"{result.Steps} steps, {result.CachedSteps} from cache");
        }
        return 0;
    }
}
