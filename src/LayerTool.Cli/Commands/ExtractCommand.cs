using System.CommandLine;
using System.Globalization;
using System.IO.Pipelines;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Diff;
using LayerTool.Registry;
using LayerTool.Registry.Extract;

namespace LayerTool.Cli.Commands;

/// <summary>What <c>layertool extract</c> was asked to do.</summary>
/// <param name="Reference">The image reference.</param>
/// <param name="Directory">Where the files go.</param>
/// <param name="Layer">The layer (1 is the bottom; negative counts from the top, -1 the last), or null with <see cref="All"/>.</param>
/// <param name="All">The flattened filesystem of every layer.</param>
/// <param name="ApplyWhiteouts">Apply the layer's whiteouts to the directory.</param>
/// <param name="Registry">The registry settings.</param>
public sealed record ExtractOptionsCli(string Reference, string Directory, int? Layer, bool All, bool ApplyWhiteouts, RegistryCliOptions Registry);

/// <summary>
/// <c>layertool extract REF DIR</c>: fetches only the layer(s) needed (the last by default) and writes their files
/// into DIR, with no engine; whiteouts are listed, and applied only with <c>--apply-whiteouts</c>.
/// </summary>
internal sealed class ExtractCommand : Command
{
    private readonly RegistryCliSymbols _registry = new();

    public ExtractCommand(CliContext context, Func<string, string?> environment)
        : base("extract", "Write one layer of a registry image (the last by default) or its whole filesystem into a directory, fetching only what is needed.")
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(environment);
        Add(ReferenceArgument);
        Add(DirectoryArgument);
        Add(LayerOption);
        Add(AllOption);
        Add(ApplyWhiteoutsOption);
        _registry.AddTo(this);
        Validators.Add(result =>
        {
            if (result.GetValue(AllOption) && result.GetValue(LayerOption) is not null) result.AddError("--layer and --all exclude each other");
            if (result.GetValue(LayerOption) == 0) result.AddError("--layer counts from 1 (the bottom) or from -1 (the top); 0 names no layer");
        });
        SetAction((result, ct) => CommandErrors.RunAsync(context, c => ExecuteAsync(Bind(result, context, environment), context, c), ct));
    }

    public Argument<string> ReferenceArgument { get; } = new("REF") { Description = "The image in a registry." };

    public Argument<string> DirectoryArgument { get; } = new("DIR") { Description = "The directory to write into (created if missing)." };

    public Option<int?> LayerOption { get; } = new("--layer") { Description = "The layer: 1 is the bottom, -1 the top (the default).", HelpName = "N" };

    public Option<bool> AllOption { get; } = new("--all") { Description = "The image's whole (flattened) filesystem instead of one layer." };

    public Option<bool> ApplyWhiteoutsOption { get; } = new("--apply-whiteouts") { Description = "Remove from DIR what the layer's whiteouts delete (otherwise they are only listed)." };

    public ExtractOptionsCli Bind(ParseResult result, CliContext context, Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(context);
        return new ExtractOptionsCli(result.GetValue(ReferenceArgument)!, Path.GetFullPath(result.GetValue(DirectoryArgument)!, context.WorkingDirectory),
            result.GetValue(LayerOption), result.GetValue(AllOption), result.GetValue(ApplyWhiteoutsOption), _registry.Bind(result, context, environment));
    }

    public static async Task<int> ExecuteAsync(ExtractOptionsCli options, CliContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        var reference = PullCommand.ParseReference(options.Reference);
        var renderer = BlobProgressRenderer.Create(options.Registry.Progress, context);
        using var client = new RegistryClient(options.Registry.ToSettings(reference.Registry, renderer));
        var wanted = options.Layer ?? -1;
        int Chosen(int count)
        {
            var index = wanted > 0 ? wanted - 1 : count + wanted;
            if (index < 0 || index >= count)
                throw new CliException($"{reference.FamiliarString} has {count} layers: --layer {wanted} names none (use 1..{count} or -1..-{count})");
            return index;
        }

        PulledImage image;
        try
        {
            image = await new ImagePuller(client).PullAsync(reference, options.All ? null : (i, count) => i == Chosen(count), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            renderer?.Done();
        }

        if (image.Layers.Count == 0) throw new CliException($"{reference.FamiliarString} has no layers");
        var extractOptions = new ExtractOptions { ApplyWhiteouts = options.ApplyWhiteouts };
        ExtractResult result;
        if (options.All)
        {
            result = await ExtractFlattenedAsync(image, options.Directory, extractOptions, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            var layer = image.Layers[Chosen(image.Layers.Count)];
            var tar = layer.Open(cancellationToken);
            await using (tar.ConfigureAwait(false))
            {
                result = await LayerExtractor.ExtractAsync(tar, options.Directory, extractOptions, cancellationToken).ConfigureAwait(false);
                // Read to the end: the diff ID is checked there.
                await tar.CopyToAsync(Stream.Null, cancellationToken).ConfigureAwait(false);
            }
        }

        foreach (var whiteout in result.Whiteouts)
            await context.Out.WriteLineAsync($"whiteout {whiteout}{(options.ApplyWhiteouts ? "" : " (not applied)")}").ConfigureAwait(false);
        foreach (var skipped in result.Skipped)
            await context.Error.WriteLineAsync($"layertool: warning: {skipped}").ConfigureAwait(false);
        var what = options.All ? $"all {image.Layers.Count} layers" : $"layer {Chosen(image.Layers.Count) + 1} of {image.Layers.Count}";
        await context.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"extracted {what} of {reference.FamiliarString} into {options.Directory}: {result.Entries} entries, {Units.Bytes(result.Bytes)}, {result.Whiteouts.Count} whiteouts")).ConfigureAwait(false);
        return CommandErrors.Success;
    }

    /// <summary>The flattened filesystem (LayerTool.Image's flattener) streamed through a pipe into the extractor.</summary>
    private static async Task<ExtractResult> ExtractFlattenedAsync(PulledImage image, string directory, ExtractOptions options, CancellationToken cancellationToken)
    {
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 8 << 20, resumeWriterThreshold: 4 << 20));
        var layers = image.Layers.Select(l => (Func<CancellationToken, Task<Stream>>)(ct => Task.FromResult(l.Open(ct)))).ToList();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var writing = Task.Run(async () =>
        {
            var output = pipe.Writer.AsStream();
            try
            {
                await LayerFlattener.FlattenAsync(layers, output, stop.Token).ConfigureAwait(false);
                await pipe.Writer.CompleteAsync().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                await pipe.Writer.CompleteAsync(e).ConfigureAwait(false);
                throw;
            }
        }, stop.Token);
        try
        {
            var input = pipe.Reader.AsStream();
            await using (input.ConfigureAwait(false))
            {
                var result = await LayerExtractor.ExtractAsync(input, directory, options, stop.Token).ConfigureAwait(false);
                await writing.ConfigureAwait(false);
                return result;
            }
        }
        catch
        {
            await stop.CancelAsync().ConfigureAwait(false);
            try
            {
                await writing.ConfigureAwait(false);
            }
            catch (Exception) when (stop.IsCancellationRequested)
            {
                // The extraction's failure is the one reported.
            }
            throw;
        }
    }
}
