using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using LayerTool.Docker.Images;
using LayerTool.Image.Formats;
using LayerTool.Image.Reports;

namespace LayerTool.Cli.Commands;

/// <summary>What <c>layertool layers</c> was asked to show.</summary>
/// <param name="Image">The image (reference or ID).</param>
/// <param name="Input">Read it from this archive or OCI layout instead of the engine.</param>
/// <param name="Json">Print JSON.</param>
public sealed record LayersOptions(string Image, string? Input, bool Json);

/// <summary><c>layertool layers IMAGE</c>: per layer its size, the instruction that made it and the bytes it wastes.</summary>
internal sealed class LayersCommand : Command
{
    public LayersCommand(CliContext context)
        : base("layers", "Show each layer's size, the instruction that made it and the bytes later layers replace or delete.")
    {
        ArgumentNullException.ThrowIfNull(context);
        Add(ImageArgument);
        Add(InputOption);
        Add(JsonOption);
        ImageArgument.Validators.Add(result =>
        {
            if (string.IsNullOrWhiteSpace(result.GetValueOrDefault<string>()))
                result.AddError("IMAGE must not be empty: give an image reference or ID");
        });
        SetAction((result, ct) => CommandErrors.RunAsync(context, c => ExecuteAsync(Bind(result, context), context, c), ct));
    }

    public Argument<string> ImageArgument { get; } = new("IMAGE") { Description = "The image to look at." };

    public Option<string?> InputOption { get; } = new("--input")
    {
        Description = "Read the image from this docker-archive or OCI layout (no engine).",
        HelpName = "ARCHIVE|OCI-DIR",
    };

    public Option<bool> JsonOption { get; } = new("--json") { Description = "Print the result as JSON." };

    public LayersOptions Bind(ParseResult result, CliContext context)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(context);
        var input = result.GetValue(InputOption);
        return new LayersOptions(result.GetValue(ImageArgument)!, input is null ? null : Path.GetFullPath(input, context.WorkingDirectory),
            result.GetValue(JsonOption));
    }

    public static async Task<int> ExecuteAsync(LayersOptions options, CliContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        IReadOnlyList<LayerReport> layers;
        if (options.Input is not null)
        {
            using var archive = ImageArchive.Open(options.Input);
            layers = await ImageReports.LayersAsync(archive.GetImage(options.Image), cancellationToken).ConfigureAwait(false);
        }
        else
        {
            using var connection = await EngineAccess.ConnectAsync(context, cancellationToken).ConfigureAwait(false);
            using var archive = await EngineImageArchive.OpenAsync(new DockerImageEngine(connection), options.Image, null, cancellationToken).ConfigureAwait(false);
            layers = await ImageReports.LayersAsync(archive.GetImage(), cancellationToken).ConfigureAwait(false);
        }

        if (options.Json)
        {
            await context.Out.WriteLineAsync(JsonSerializer.Serialize(
                layers.Select(l => new LayerJson(l.Index, l.DiffId, l.Size, l.CreatedBy, l.Files, l.FileBytes, l.WastedFiles, l.WastedBytes)).ToList(),
                CliJson.Default.ListLayerJson)).ConfigureAwait(false);
            return CommandErrors.Success;
        }

        await context.Out.WriteLineAsync($"{"#",3}  {"SIZE",10}  {"WASTED",10}  CREATED BY").ConfigureAwait(false);
        foreach (var l in layers)
        {
            var by = l.CreatedBy ?? "?";
            if (by.Length > 100) by = by[..97] + "...";
            await context.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"{l.Index,3}  {Units.Bytes(l.Size),10}  {Units.Bytes(l.WastedBytes),10}  {by}")).ConfigureAwait(false);
        }
        var total = layers.Sum(l => l.Size);
        var wasted = layers.Sum(l => l.WastedBytes);
        await context.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"total {Units.Bytes(total)} in {layers.Count} layers; {Units.Bytes(wasted)} wasted (replaced or deleted by later layers, counted once)")).ConfigureAwait(false);
        return CommandErrors.Success;
    }
}
