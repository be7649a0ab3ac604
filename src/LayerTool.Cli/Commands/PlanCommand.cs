using System.CommandLine;
using LayerTool.Build.Plans;

namespace LayerTool.Cli.Commands;

/// <summary>What <c>layertool plan graph</c> was asked to do.</summary>
/// <param name="File">The plan file.</param>
/// <param name="Format">text, dot or mermaid.</param>
public sealed record PlanGraphOptions(string File, PlanGraphFormat Format);

/// <summary>What <c>layertool plan export</c> was asked to do.</summary>
/// <param name="File">The plan file.</param>
/// <param name="Target">gitlab or argo.</param>
/// <param name="Output">The file to write; null: standard output.</param>
/// <param name="Root">The directory the pipeline runs in; null: the git work tree holding the plan, else its directory.</param>
/// <param name="RunnerImage">The jobs' image; null: <c>{registry}/layertool-runner:latest</c>.</param>
/// <param name="DindImage">The Docker-in-Docker image.</param>
public sealed record PlanExportCommandOptions(string File, PlanExportTarget Target, string? Output, string? Root, string? RunnerImage, string DindImage);

/// <summary>
/// <c>layertool plan SUBCOMMAND FILE</c>: build plans, many images in dependency order (docs/cli/plan.md).
/// Each subcommand is one method here or in another part of this class: <c>graph</c> and <c>export</c> below;
/// <c>run</c> and <c>status</c> register in <c>AddRunCommands</c> (PlanCommand.Run.cs).
/// </summary>
internal sealed partial class PlanCommand : Command
{
    public PlanCommand(CliContext context, Func<string, string?> environment)
        : base("plan", "Build plans: many images in dependency order; graph, export to GitLab CI or Argo.")
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(environment);
        Subcommands.Add(new PlanGraphCommand(context));
        Subcommands.Add(new PlanExportCommand(context));
        AddRunCommands(context, environment);
    }

    /// <summary>Adds <c>plan run</c> and <c>plan status</c>: implemented in their own part of this class (PlanCommand.Run.cs).</summary>
    partial void AddRunCommands(CliContext context, Func<string, string?> environment);

    /// <summary>The plan file argument every subcommand takes first.</summary>
    public static Argument<string> CreateFileArgument() => new("FILE") { Description = "The plan file (YAML; see docs/cli/plan.md)." };
}

/// <summary><c>layertool plan graph FILE [--format text|dot|mermaid]</c>: prints the plan's dependency graph.</summary>
internal sealed class PlanGraphCommand : Command
{
    public PlanGraphCommand(CliContext context)
        : base("graph", "Print the plan's dependency graph: levels with each image's parents and why (text), or DOT, or Mermaid.")
    {
        ArgumentNullException.ThrowIfNull(context);
        Add(FileArgument);
        Add(FormatOption);
        FormatOption.AcceptOnlyFromAmong("text", "dot", "mermaid");
        SetAction((result, ct) => CommandErrors.RunAsync(context, c => ExecuteAsync(Bind(result), context, c), ct));
    }

    public Argument<string> FileArgument { get; } = PlanCommand.CreateFileArgument();

    public Option<string> FormatOption { get; } = new("--format")
    {
        Description = "text (levels, parents and why), dot (Graphviz) or mermaid.",
        DefaultValueFactory = _ => "text",
    };

    public PlanGraphOptions Bind(ParseResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var format = result.GetValue(FormatOption) switch
        {
            "dot" => PlanGraphFormat.Dot,
            "mermaid" => PlanGraphFormat.Mermaid,
            _ => PlanGraphFormat.Text,
        };
        return new PlanGraphOptions(result.GetValue(FileArgument)!, format);
    }

    public static async Task<int> ExecuteAsync(PlanGraphOptions options, CliContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        cancellationToken.ThrowIfCancellationRequested();
        var graph = PlanGraph.Load(options.File, context.WorkingDirectory);
        await context.Out.WriteAsync(PlanGraphFormatter.Format(graph, options.Format)).ConfigureAwait(false);
        return CommandErrors.Success;
    }
}

/// <summary><c>layertool plan export FILE --to gitlab|argo [-o FILE]</c>: the plan as a GitLab CI pipeline or an Argo Workflow.</summary>
internal sealed class PlanExportCommand : Command
{
    public PlanExportCommand(CliContext context)
        : base("export", "Write the plan as a GitLab CI pipeline (needs:, a docker:dind service) or an Argo Workflow (a dag, dind sidecars).")
    {
        ArgumentNullException.ThrowIfNull(context);
        Add(FileArgument);
        Add(ToOption);
        Add(OutputOption);
        Add(RootOption);
        Add(RunnerImageOption);
        Add(DindImageOption);
        ToOption.AcceptOnlyFromAmong("gitlab", "argo");
        SetAction((result, ct) => CommandErrors.RunAsync(context, c => ExecuteAsync(Bind(result), context, c), ct));
    }

    public Argument<string> FileArgument { get; } = PlanCommand.CreateFileArgument();

    public Option<string> ToOption { get; } = new("--to") { Description = "gitlab or argo.", Required = true, HelpName = "gitlab|argo" };

    public Option<string?> OutputOption { get; } = new("--output", "-o") { Description = "Write to FILE instead of standard output.", HelpName = "FILE" };

    public Option<string?> RootOption { get; } = new("--root")
    {
        Description = "The directory the pipeline runs in (its checkout); paths in jobs are relative to it. Default: the git work tree holding the plan, else the plan's directory.",
        HelpName = "DIR",
    };

    public Option<string?> RunnerImageOption { get; } = new("--runner-image")
    {
        Description = "The image jobs run in: LayerTool and the docker CLI (docker/runner/Dockerfile). Default: REGISTRY/layertool-runner:latest.",
        HelpName = "IMAGE",
    };

    public Option<string> DindImageOption { get; } = new("--dind-image")
    {
        Description = "The Docker-in-Docker image of the service (GitLab) or sidecar (Argo).",
        HelpName = "IMAGE",
        DefaultValueFactory = _ => PlanExportOptions.DefaultDindImage,
    };

    public PlanExportCommandOptions Bind(ParseResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var target = result.GetValue(ToOption) == "argo" ? PlanExportTarget.Argo : PlanExportTarget.GitLab;
        return new PlanExportCommandOptions(result.GetValue(FileArgument)!, target, result.GetValue(OutputOption), result.GetValue(RootOption),
            result.GetValue(RunnerImageOption), result.GetValue(DindImageOption) ?? PlanExportOptions.DefaultDindImage);
    }

    public static async Task<int> ExecuteAsync(PlanExportCommandOptions options, CliContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        cancellationToken.ThrowIfCancellationRequested();
        var graph = PlanGraph.Load(options.File, context.WorkingDirectory);
        var root = options.Root is null ? PlanExport.DefaultRoot(graph.Plan.Path) : Path.GetFullPath(options.Root, context.WorkingDirectory);
        if (!Directory.Exists(root))
            throw new CliException($"--root {options.Root}: not a directory");
        var text = PlanExport.Export(graph, new PlanExportOptions(options.Target, root, options.RunnerImage, options.DindImage));
        if (options.Output is null)
        {
            await context.Out.WriteAsync(text).ConfigureAwait(false);
            return CommandErrors.Success;
        }

        // Written next to the target and renamed over it: a failed write never leaves half a pipeline.
        var path = Path.GetFullPath(options.Output, context.WorkingDirectory);
        var temp = path + ".tmp-" + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        try
        {
            await File.WriteAllTextAsync(temp, text, cancellationToken).ConfigureAwait(false);
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }

        return CommandErrors.Success;
    }
}
