using System.CommandLine;
using LayerTool.Build;
using LayerTool.Docker;
using LayerTool.Docker.Dind;

namespace LayerTool.Cli.Commands;

/// <summary>
/// <c>layertool dind build-image</c>: build the Docker-in-Docker image from Dockerfile.dind;
/// <c>layertool dind run</c>: run a command against a throw-away dind engine.
/// </summary>
public sealed class DindCommand
{
    private readonly CliContext _cli;

    private DindCommand(CliContext cli) => _cli = cli;

    public static Command Create(CliContext cli)
    {
        ArgumentNullException.ThrowIfNull(cli);
        return new DindCommand(cli).Build();
    }

    /// <summary>Parses a <c>dind build-image</c> command line (after <c>dind build-image</c>) into the library options.</summary>
    public static DindImageOptions ParseBuildImage(string[] args, string currentDirectory)
    {
        var command = new DindCommand(CliContext.FromConsole());
        var parse = command.CreateBuildImage().Parse(args);
        return parse.Errors.Count > 0 ? throw new ArgumentException(parse.Errors[0].Message, nameof(args)) : command.BuildImageOptions(parse, currentDirectory);
    }

    /// <summary>Parses a <c>dind run</c> command line (after <c>dind run</c>) into the library options.</summary>
    public static (DindOptions Options, DindJob Job) ParseRun(string[] args)
    {
        var command = new DindCommand(CliContext.FromConsole());
        var parse = command.CreateRun().Parse(args);
        return parse.Errors.Count > 0 ? throw new ArgumentException(parse.Errors[0].Message, nameof(args)) : command.RunOptions(parse);
    }

    private Command Build()
    {
        var dind = new Command("dind", "Docker-in-Docker build containers: build the image, run work inside a throw-away engine.");
        dind.Subcommands.Add(CreateBuildImage());
        dind.Subcommands.Add(CreateRun());
        return dind;
    }

    // ---- build-image -------------------------------------------------------------------------------

    private readonly Option<string?> BaseOption = new("--base") { Description = "Base image (Debian-like; BASE build argument). Default: debian:bookworm." };
    private readonly Option<string> TagOption = new("--tag", "-t") { Description = "Name of the image.", DefaultValueFactory = _ => DindOptions.DefaultImage };
    private readonly Option<DirectoryInfo?> RepoOption = new("--repo") { Description = "The LayerTool repository (Dockerfile.dind, wrapdocker.sh, src/). Default: found from the current directory upwards." };
    private readonly Option<FileInfo?> BinaryOption = new("--layertool") { Description = "Use this published layertool binary instead of publishing src/LayerTool.Cli." };
    private readonly Option<bool> IfChangedOption = new("--if-changed") { Description = "Skip the build when the image was built from the same inputs." };

    private Command CreateBuildImage()
    {
        var command = new Command("build-image", "Build the Docker-in-Docker image (dockerd, containerd, runc, tini, wrapdocker.sh, layertool) from Dockerfile.dind.")
        {
            BaseOption, TagOption, RepoOption, BinaryOption, IfChangedOption,
        };
        command.SetAction(async (parse, ct) =>
        {
            return await CommandErrors.RunAsync(_cli, async token =>
            {
                var options = BuildImageOptions(parse, _cli.WorkingDirectory);
                using var engine = await DockerConnection.ConnectAsync(new EngineSettings(), token).ConfigureAwait(false);
                var result = await DindImageBuilder.BuildAsync(engine, options, new LineLog(_cli.Error), token).ConfigureAwait(false);
                await _cli.Out.WriteLineAsync(result.ImageId).ConfigureAwait(false);
                return CommandErrors.Success;
            }, ct).ConfigureAwait(false);
        });
        return command;
    }

    // The library options of a parsed <c>dind build-image</c> command line.</summary>
    private DindImageOptions BuildImageOptions(ParseResult parse, string currentDirectory)
    {
        ArgumentNullException.ThrowIfNull(parse);
        var repo = parse.GetValue(RepoOption)?.FullName ?? FindRepository(currentDirectory)
            ?? throw new CliException($"no {DindImageBuilder.DockerfileName} in {currentDirectory} or above: run from the LayerTool repository or pass --repo");
        return new DindImageOptions(repo, parse.GetValue(TagOption) ?? DindOptions.DefaultImage, parse.GetValue(BaseOption),
            parse.GetValue(BinaryOption)?.FullName, parse.GetValue(IfChangedOption));
    }

    /// <summary>
    /// <paramref name="options"/> able to build their image on first use: from the LayerTool repository above the
    /// working directory, or above this program's own directory (a layertool run from its build output). With
    /// neither, the options are returned as they are (and a missing image fails with how to build it).
    /// </summary>
    public static DindOptions? WithImageSource(DindOptions? options, string workingDirectory)
    {
        if (options is null || options.BuildIfMissing is not null) return options;
        var repo = FindRepository(workingDirectory) ?? FindRepository(AppContext.BaseDirectory);
        if (repo is null) return options;
        // A single-file layertool can go into the image as it is; otherwise the repository's sources are published.
        var self = Environment.ProcessPath;
        var singleFile = self is not null && Path.GetFileNameWithoutExtension(self) == "layertool"
            && !File.Exists(Path.Combine(AppContext.BaseDirectory, "layertool.dll"));
        var binary = singleFile ? self : null;
        return options with { BuildIfMissing = new DindImageOptions(repo, options.Image, LayerToolBinary: binary, Labels: options.Labels) };
    }

    private static string? FindRepository(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, DindImageBuilder.DockerfileName))) return dir.FullName;
        return null;
    }

    // ---- run ---------------------------------------------------------------------------------------

    private readonly Option<string> ImageOption = new("--dind-image") { Description = "The dind image.", DefaultValueFactory = _ => DindOptions.DefaultImage };
    private readonly Option<string[]> ProvideOption = new("--provide") { Description = "Copy this image from the outer engine into the dind engine first (repeatable).", AllowMultipleArgumentsPerToken = false };
    private readonly Option<string[]> BringBackOption = new("--bring-back") { Description = "Copy this image back to the outer engine when the command succeeded (repeatable)." };
    private readonly Option<string?> IsolationOption = new Option<string?>("--isolation") { Description = "auto (try --privileged, fall back to explicit capabilities), privileged or capabilities." }
        .AcceptOnlyFromAmong("auto", "privileged", "capabilities");
    private readonly Option<int> TimeoutOption = new("--start-timeout") { Description = "Seconds the inner daemon may take to answer.", DefaultValueFactory = _ => 60 };
    private readonly Argument<string[]> CommandArgument = new("command") { Description = "Command run on this machine with DOCKER_HOST set to the dind engine.", Arity = ArgumentArity.OneOrMore };

    private Command CreateRun()
    {
        var command = new Command("run", "Start a throw-away dind container, run COMMAND here against its engine, bring images back, remove it.")
        {
            ImageOption, ProvideOption, BringBackOption, IsolationOption, TimeoutOption, CommandArgument,
        };
        command.SetAction(async (parse, ct) =>
        {
            var (options, job) = RunOptions(parse);
            return await CommandErrors.RunAsync(_cli, async token =>
            {
                var log = new LineLog(_cli.Error);
                using var engine = await DockerConnection.ConnectAsync(new EngineSettings(), token).ConfigureAwait(false);
                var result = await DindJobRunner.RunAsync(engine, options, job, log, token).ConfigureAwait(false);
                log.Report($"dind: start {result.Start.TotalSeconds:0.0}s, provide {result.Provide.TotalSeconds:0.0}s, command {result.Command.TotalSeconds:0.0}s, bring back {result.BringBack.TotalSeconds:0.0}s, cleanup {result.Cleanup.TotalSeconds:0.0}s");
                return result.ExitCode == 0 ? CommandErrors.Success : CommandErrors.Failure;
            }, ct).ConfigureAwait(false);
        });
        return command;
    }

    // The library options of a parsed <c>dind run</c> command line.</summary>
    private (DindOptions Options, DindJob Job) RunOptions(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        var isolation = parse.GetValue(IsolationOption) switch
        {
            "privileged" => DindIsolation.Privileged,
            "capabilities" => DindIsolation.ExplicitCapabilities,
            _ => DindIsolation.Auto,
        };
        var options = new DindOptions(parse.GetValue(ImageOption) ?? DindOptions.DefaultImage, Isolation: isolation,
            StartTimeout: TimeSpan.FromSeconds(parse.GetValue(TimeoutOption)));
        var job = new DindJob(parse.GetValue(CommandArgument) ?? [], parse.GetValue(ProvideOption) ?? [], parse.GetValue(BringBackOption) ?? []);
        return (options, job);
    }

    // ---- shared ------------------------------------------------------------------------------------

    /// <summary>Progress lines on stderr, in order.</summary>
    internal sealed class LineLog(TextWriter writer) : IProgress<string>
    {
        public void Report(string value) => writer.WriteLine(value);
    }
}
