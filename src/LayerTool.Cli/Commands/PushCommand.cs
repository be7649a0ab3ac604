using LayerTool.Image;
using System.CommandLine;
using LayerTool.Registry;

namespace LayerTool.Cli.Commands;

/// <summary>What <c>layertool push</c> was asked to do.</summary>
/// <param name="Source">An image in the engine, or a docker-archive / OCI layout path.</param>
/// <param name="Reference">Where to push it.</param>
/// <param name="ChunkSize">Upload in chunks of at least this many bytes; null: one request per blob.</param>
/// <param name="Registry">The registry settings.</param>
public sealed record PushOptions(string Source, string Reference, long? ChunkSize, RegistryCliOptions Registry);

/// <summary><c>layertool push IMAGE|ARCHIVE REF</c>: blobs the registry lacks, in parallel, then the manifest; prints the digest.</summary>
internal sealed class PushCommand : Command
{
    private readonly RegistryCliSymbols _registry = new();

    public PushCommand(CliContext context, Func<string, string?> environment)
        : base("push", "Push an image from the engine, a docker-archive or an OCI layout to a registry: missing blobs in parallel, mounts across repositories, the manifest last.")
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(environment);
        Add(SourceArgument);
        Add(ReferenceArgument);
        Add(ChunkSizeOption);
        _registry.AddTo(this);
        Validators.Add(result =>
        {
            if (result.GetValue(ChunkSizeOption) is < 1) result.AddError("--chunk-size must be positive");
        });
        SetAction((result, ct) => CommandErrors.RunAsync(context, c => ExecuteAsync(Bind(result, context, environment), context, c), ct));
    }

    public Argument<string> SourceArgument { get; } = new("IMAGE|ARCHIVE") { Description = "An image in the engine, or a docker-archive file or OCI layout (directory or tar)." };

    public Argument<string> ReferenceArgument { get; } = new("REF") { Description = "Where to push, e.g. localhost:5000/app:1." };

    public Option<long?> ChunkSizeOption { get; } = new("--chunk-size") { Description = "Upload blobs in chunks of at least this many bytes (raised to the registry's OCI-Chunk-Min-Length); default one request per blob.", HelpName = "BYTES" };

    public PushOptions Bind(ParseResult result, CliContext context, Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(context);
        var source = result.GetValue(SourceArgument)!;
        var path = Path.GetFullPath(source, context.WorkingDirectory);
        return new PushOptions(File.Exists(path) || Directory.Exists(path) ? path : source, result.GetValue(ReferenceArgument)!,
            result.GetValue(ChunkSizeOption), _registry.Bind(result, context, environment));
    }

    public static async Task<int> ExecuteAsync(PushOptions options, CliContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        var target = PullCommand.ParseReference(options.Reference);
        PushResult result;
        if (File.Exists(options.Source) || Directory.Exists(options.Source))
        {
            result = await RegistryPush.PushArchiveAsync(options.Source, target, options.Registry, options.ChunkSize, context, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            using var connection = await EngineAccess.ConnectAsync(context, cancellationToken).ConfigureAwait(false);
            result = await RegistryPush.PushEngineImageAsync(connection, options.Source, target, options.Registry, options.ChunkSize, context, cancellationToken).ConfigureAwait(false);
        }

        await context.Error.WriteLineAsync(RegistryPush.Summary(target, result)).ConfigureAwait(false);
        await context.Out.WriteLineAsync(result.Digest.ToString()).ConfigureAwait(false);
        return CommandErrors.Success;
    }
}
