using System.CommandLine;

namespace LayerTool.Cli.Commands;

/// <summary>What <c>layertool layers</c> was asked to show.</summary>
/// <param name="Image">The image (reference or ID).</param>
/// <param name="Input">Read it from this archive or OCI layout instead of the engine.</param>
/// <param name="Json">Print JSON.</param>
public sealed record LayersOptions(string Image, string? Input, bool Json);

/// <summary><c>layertool layers IMAGE</c>: per layer its size, the instruction that made it and the bytes it wastes.</summary>
public static class LayersCommand
{
    public static Command Create(Func<LayersOptions, CancellationToken, Task<int>> run)
    {
        ArgumentNullException.ThrowIfNull(run);
        var image = new Argument<string>("IMAGE") { Description = "The image to look at" };
        var input = new Option<string?>("--input") { Description = "Read the image from this docker-archive or OCI layout (no engine)" };
        var json = new Option<bool>("--json") { Description = "Print the result as JSON" };
        var command = new Command("layers", "Show each layer's size, the instruction that made it and the bytes later layers replace or delete") { image, input, json };
        command.SetAction((r, ct) => run(new LayersOptions(r.GetValue(image)!, r.GetValue(input), r.GetValue(json)), ct));
        return command;
    }
}
