using System.CommandLine;

namespace LayerTool.Cli.Commands;

/// <summary>What <c>layertool diff</c> was asked to compare.</summary>
/// <param name="From">The first image (reference or ID).</param>
/// <param name="To">The second image.</param>
/// <param name="Input">Read both from this archive or OCI layout instead of the engine.</param>
/// <param name="Json">Print JSON.</param>
public sealed record DiffOptions(string From, string To, string? Input, bool Json);

/// <summary><c>layertool diff A B</c>: the paths added, changed and deleted from A's filesystem to B's.</summary>
public static class DiffCommand
{
    public static Command Create(Func<DiffOptions, CancellationToken, Task<int>> run)
    {
        ArgumentNullException.ThrowIfNull(run);
        var from = new Argument<string>("A") { Description = "The image to compare from" };
        var to = new Argument<string>("B") { Description = "The image to compare to" };
        var input = new Option<string?>("--input") { Description = "Read both images from this docker-archive or OCI layout (no engine)" };
        var json = new Option<bool>("--json") { Description = "Print the result as JSON" };
        var command = new Command("diff", "List the paths added, changed and deleted between two images' filesystems") { from, to, input, json };
        command.SetAction((r, ct) => run(new DiffOptions(r.GetValue(from)!, r.GetValue(to)!, r.GetValue(input), r.GetValue(json)), ct));
        return command;
    }
}
