using System.CommandLine;
using System.Text.Json;
using LayerTool.Docker.Images;
using LayerTool.Image.Formats;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Reports;

namespace LayerTool.Cli.Commands;

/// <summary>What <c>layertool diff</c> was asked to compare.</summary>
/// <param name="From">The first image (reference or ID).</param>
/// <param name="To">The second image.</param>
/// <param name="Input">Read both from this archive or OCI layout instead of the engine.</param>
/// <param name="Json">Print JSON.</param>
public sealed record DiffOptions(string From, string To, string? Input, bool Json);

/// <summary><c>layertool diff A B</c>: the paths added (A), changed (C) and deleted (D) from A's filesystem to B's.</summary>
internal sealed class DiffCommand : Command
{
    public DiffCommand(CliContext context)
        : base("diff", "List the paths added, changed and deleted between two images' filesystems.")
    {
        ArgumentNullException.ThrowIfNull(context);
        Add(FromArgument);
        Add(ToArgument);
        Add(InputOption);
        Add(JsonOption);
        foreach (var argument in new[] { FromArgument, ToArgument })
        {
            argument.Validators.Add(result =>
            {
                if (string.IsNullOrWhiteSpace(result.GetValueOrDefault<string>()))
                    result.AddError($"{argument.Name} must not be empty: give an image reference or ID");
            });
        }
        SetAction((result, ct) => CommandErrors.RunAsync(context, c => ExecuteAsync(Bind(result, context), context, c), ct));
    }

    public Argument<string> FromArgument { get; } = new("A") { Description = "The image to compare from." };

    public Argument<string> ToArgument { get; } = new("B") { Description = "The image to compare to." };

    public Option<string?> InputOption { get; } = new("--input")
    {
        Description = "Read both images from this docker-archive or OCI layout (no engine).",
        HelpName = "ARCHIVE|OCI-DIR",
    };

    public Option<bool> JsonOption { get; } = new("--json") { Description = "Print the result as JSON." };

    public DiffOptions Bind(ParseResult result, CliContext context)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(context);
        var input = result.GetValue(InputOption);
        return new DiffOptions(result.GetValue(FromArgument)!, result.GetValue(ToArgument)!,
            input is null ? null : Path.GetFullPath(input, context.WorkingDirectory), result.GetValue(JsonOption));
    }

    public static async Task<int> ExecuteAsync(DiffOptions options, CliContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        IReadOnlyList<FsChange> changes;
        if (options.Input is not null)
        {
            using var archive = ImageArchive.Open(options.Input);
            changes = await ImageReports.DiffAsync(archive.GetImage(options.From), archive.GetImage(options.To), cancellationToken).ConfigureAwait(false);
        }
        else
        {
            using var connection = await EngineAccess.ConnectAsync(context, cancellationToken).ConfigureAwait(false);
            var engine = new DockerImageEngine(connection);
            using var from = await EngineImageArchive.OpenAsync(engine, options.From, null, cancellationToken).ConfigureAwait(false);
            using var to = await EngineImageArchive.OpenAsync(engine, options.To, null, cancellationToken).ConfigureAwait(false);
            changes = await ImageReports.DiffAsync(from.GetImage(), to.GetImage(), cancellationToken).ConfigureAwait(false);
        }

        if (options.Json)
        {
            await context.Out.WriteLineAsync(JsonSerializer.Serialize(
                changes.Select(c => new ChangeJson("/" + c.Path, c.Kind.ToString().ToLowerInvariant(), c.Detail)).ToList(),
                CliJson.Default.ListChangeJson)).ConfigureAwait(false);
        }
        else
        {
            foreach (var c in changes)
            {
                var mark = c.Kind switch { FsChangeKind.Added => 'A', FsChangeKind.Changed => 'C', _ => 'D' };
                await context.Out.WriteLineAsync($"{mark} /{c.Path}{(c.Detail is null ? "" : "  (" + c.Detail + ")")}").ConfigureAwait(false);
            }
        }
        return CommandErrors.Success;
    }
}
