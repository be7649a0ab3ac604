using System.CommandLine;
using LayerTool.Dockerfile.Model;

namespace LayerTool.Cli.Commands;

/// <summary>What <c>layertool parse</c> was asked to do.</summary>
/// <param name="File">The Dockerfile path, or <c>-</c> for standard input.</param>
/// <param name="Json">Print JSON instead of text.</param>
public sealed record ParseOptions(string File, bool Json);

/// <summary><c>layertool parse [-f FILE] [--json]</c>: prints the stages and instructions of a Dockerfile.</summary>
internal sealed class ParseCommand : Command
{
    public ParseCommand(CliContext context)
        : base("parse", "Parse a Dockerfile (with TAG and COMPRESS) and print its stages and instructions.")
    {
        ArgumentNullException.ThrowIfNull(context);
        Add(FileOption);
        Add(JsonOption);
        SetAction((result, ct) => CommandErrors.RunAsync(context, c => ExecuteAsync(Bind(result), context, c), ct));
    }

    public Option<string> FileOption { get; } = new("--file", "-f")
    {
        Description = "The Dockerfile to read; - reads standard input.",
        HelpName = "FILE",
        DefaultValueFactory = _ => DockerfileInput.DefaultFile,
    };

    public Option<bool> JsonOption { get; } = new("--json")
    {
        Description = "Print JSON instead of text.",
    };

    public ParseOptions Bind(ParseResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        return new ParseOptions(result.GetValue(FileOption) ?? DockerfileInput.DefaultFile, result.GetValue(JsonOption));
    }

    public static async Task<int> ExecuteAsync(ParseOptions options, CliContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        var (text, name) = await DockerfileInput.ReadAsync(options.File, context, cancellationToken).ConfigureAwait(false);
        var model = DockerfileModel.Parse(text, name);
        foreach (var warning in model.Warnings)
            await context.Error.WriteLineAsync(warning.ToString()).ConfigureAwait(false);
        var output = options.Json ? DockerfileDump.ToJson(model) + "\n" : DockerfileDump.DumpModel(model);
        await context.Out.WriteAsync(output).ConfigureAwait(false);
        return CommandErrors.Success;
    }
}
