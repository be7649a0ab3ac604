using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using LayerTool.Build.Squash;
using LayerTool.Docker.Images;
using LayerTool.Docker.Squash;
using LayerTool.Image.Squash;

namespace LayerTool.Cli.Commands;

/// <summary>What <c>layertool squash</c> was asked to do (parsed, validated, not yet run).</summary>
/// <param name="Image">The image to squash (a reference or ID; with <see cref="Input"/>, a name inside the archive).</param>
/// <param name="Onto">The base to put the one new layer on, or null for <c>scratch</c>.</param>
/// <param name="Tags">Tags for the result.</param>
/// <param name="Message">The squash history entry's comment.</param>
/// <param name="Output">Also write the result here (a file for docker-archive, a directory or .tar for OCI).</param>
/// <param name="Format"><c>docker</c> or <c>oci</c>.</param>
/// <param name="NoLoad">Do not load the result into the engine.</param>
/// <param name="Input">Read IMAGE (and BASE, unless <see cref="BaseInput"/>) from this archive or OCI layout; no engine.</param>
/// <param name="BaseInput">Read BASE from this archive or OCI layout.</param>
/// <param name="Timestamp">Reproducible mode: the clamp time (SOURCE_DATE_EPOCH, or the Unix epoch).</param>
/// <param name="Json">Print the result as JSON.</param>
/// <param name="CacheDir">Where base-filesystem indexes are cached.</param>
/// <param name="NoFastPath">Never take the local overlay2 fast path (always read through the engine API).</param>
/// <param name="Verbose">Say which way the squash went (fast path or API, and why).</param>
public sealed record SquashOptions(
    string Image,
    string? Onto,
    IReadOnlyList<string> Tags,
    string? Message,
    string? Output,
    string Format,
    bool NoLoad,
    string? Input,
    string? BaseInput,
    DateTimeOffset? Timestamp,
    bool Json,
    string CacheDir,
    bool NoFastPath = false,
    bool Verbose = false)
{
    public bool Equals(SquashOptions? other) =>
        other is not null && Image == other.Image && Onto == other.Onto && Tags.SequenceEqual(other.Tags) && Message == other.Message
        && Output == other.Output && Format == other.Format && NoLoad == other.NoLoad && Input == other.Input && BaseInput == other.BaseInput
        && Timestamp == other.Timestamp && Json == other.Json && CacheDir == other.CacheDir
        && NoFastPath == other.NoFastPath && Verbose == other.Verbose;

    public override int GetHashCode() => HashCode.Combine(Image, Onto, Tags.Count, Output);
}

/// <summary>
/// <c>layertool squash IMAGE --onto BASE|scratch</c>: everything IMAGE adds over BASE as one layer, the
/// difference of the two filesystems, verified before anything is tagged or written.
/// </summary>
internal sealed class SquashCommand : Command
{
    private readonly Func<string, string?> _environment;
    private readonly CliContext _context;

    public SquashCommand(CliContext context, Func<string, string?> environment)
        : base("squash", "Replace every layer IMAGE adds over BASE with one layer: the difference of the two filesystems.")
    {
        _context = context ?? throw new ArgumentNullException(nameof(context));
        _environment = environment ?? throw new ArgumentNullException(nameof(environment));
        Add(ImageArgument);
        Add(OntoOption);
        Add(TagOption);
        Add(MessageOption);
        Add(OutputOption);
        Add(FormatOption);
        Add(NoLoadOption);
        Add(InputOption);
        Add(BaseInputOption);
        Add(ReproducibleOption);
        Add(JsonOption);
        Add(NoFastPathOption);
        Add(VerboseOption);
        Add(CacheDirOption);
        FormatOption.AcceptOnlyFromAmong("docker", "oci");
        Validators.Add(result =>
        {
            if (result.GetValue(NoLoadOption) && result.GetValue(OutputOption) is null)
                result.AddError("--no-load needs --output: the result would go nowhere");
            if (result.GetValue(BaseInputOption) is not null && result.GetValue(InputOption) is null)
                result.AddError("--base-input needs --input");
            if (result.GetValue(InputOption) is not null && result.GetValue(OutputOption) is null)
                result.AddError("--input needs --output: there is no engine to load the result into");
        });
        SetAction((result, ct) => CommandErrors.RunAsync(context, c => ExecuteAsync(Bind(result), _context, c), ct));
    }

    public Argument<string> ImageArgument { get; } = new("IMAGE") { Description = "The image to squash (reference or ID)." };

    public Option<string> OntoOption { get; } = new("--onto")
    {
        Description = "The base to put the new layer on (any image, ancestor or not), or 'scratch'.",
        HelpName = "BASE",
        Required = true,
    };

    public Option<string[]> TagOption { get; } = new("--tag", "-t") { Description = "Tag the result; repeatable.", HelpName = "NAME[:TAG]" };

    public Option<string?> MessageOption { get; } = new("--message", "-m") { Description = "Comment of the squash's history entry." };

    public Option<string?> OutputOption { get; } = new("--output", "-o")
    {
        Description = "Also write the result here: a docker-archive tar, or an OCI layout (directory, or a .tar).",
        HelpName = "PATH",
    };

    public Option<string> FormatOption { get; } = new("--format")
    {
        Description = "Format of --output: docker or oci.",
        DefaultValueFactory = _ => "docker",
    };

    public Option<bool> NoLoadOption { get; } = new("--no-load") { Description = "Do not load the result into the engine (needs --output)." };

    public Option<string?> InputOption { get; } = new("--input")
    {
        Description = "Read IMAGE and BASE from this docker-archive or OCI layout instead of an engine (needs --output).",
        HelpName = "ARCHIVE|OCI-DIR",
    };

    public Option<string?> BaseInputOption { get; } = new("--base-input")
    {
        Description = "Read BASE from this docker-archive or OCI layout.",
        HelpName = "ARCHIVE|OCI-DIR",
    };

    public Option<bool> ReproducibleOption { get; } = new("--reproducible")
    {
        Description = "Same inputs, same image ID: times clamped to SOURCE_DATE_EPOCH (or 0).",
    };

    public Option<bool> JsonOption { get; } = new("--json") { Description = "Print the result as JSON." };

    public Option<bool> NoFastPathOption { get; } = new("--no-fast-path")
    {
        Description = "Read the images through the engine API even when the engine's overlay2 layer directories are readable here.",
    };

    public Option<bool> VerboseOption { get; } = new("--verbose") { Description = "Say how the squash read the image (fast path or engine API, and why)." };

    public Option<string?> CacheDirOption { get; } = new("--cache-dir")
    {
        Description = "Where base filesystem indexes are cached (default: $XDG_CACHE_HOME or ~/.cache, /layertool/index).",
        HelpName = "DIR",
    };

    public SquashOptions Bind(ParseResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var onto = result.GetValue(OntoOption)!;
        DateTimeOffset? timestamp = null;
        if (result.GetValue(ReproducibleOption))
        {
            timestamp = DateTimeOffset.UnixEpoch;
            var epoch = _environment("SOURCE_DATE_EPOCH");
            if (!string.IsNullOrWhiteSpace(epoch))
            {
                if (!long.TryParse(epoch, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
                    throw new CliException($"SOURCE_DATE_EPOCH must be a number of seconds, not '{epoch}'");
                timestamp = DateTimeOffset.FromUnixTimeSeconds(seconds);
            }
        }
        var input = result.GetValue(InputOption);
        return new SquashOptions(
            result.GetValue(ImageArgument)!,
            string.Equals(onto, "scratch", StringComparison.Ordinal) ? null : onto,
            result.GetValue(TagOption) ?? [],
            result.GetValue(MessageOption),
            Resolve(result.GetValue(OutputOption)),
            result.GetValue(FormatOption) ?? "docker",
            result.GetValue(NoLoadOption) || input is not null,
            Resolve(input),
            Resolve(result.GetValue(BaseInputOption)),
            timestamp,
            result.GetValue(JsonOption),
            Resolve(result.GetValue(CacheDirOption)) ?? EngineAccess.DefaultIndexCache(_environment),
            result.GetValue(NoFastPathOption),
            result.GetValue(VerboseOption));
    }

    private string? Resolve(string? path) => path is null ? null : Path.GetFullPath(path, _context.WorkingDirectory);

    public static async Task<int> ExecuteAsync(SquashOptions options, CliContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        var progress = EngineAccess.Progress(context);
        SquashResult result;
        if (options.Input is not null)
        {
            // No engine: only the temp directories of killed runs are swept.
            await EngineAccess.SweepAsync(context, null, cancellationToken).ConfigureAwait(false);
            var r = await ArchiveSquasher.SquashAsync(new ArchiveSquashRequest(
                options.Input, options.Image, options.Onto, options.BaseInput, options.Output!, options.Format, options.Tags,
                options.Message, options.Timestamp, null, options.CacheDir, context.TempDirectory), progress is null ? null : new Progress<long>(b => progress.Report(new SquashProgress("squash", b, null))),
                cancellationToken).ConfigureAwait(false);
            result = new SquashResult(r.ImageId, r.LayerDiffId, r.LayersBefore, r.LayersAfter, r.BytesBefore, r.BytesAfter, r.LayerBytes, [], r.Warnings);
        }
        else
        {
            using var connection = await EngineAccess.ConnectAsync(context, cancellationToken).ConfigureAwait(false);
            var service = new EngineSquashService(new DockerImageEngine(connection), new EngineSquashSettings(options.CacheDir, context.TempDirectory));
            result = await service.SquashAsync(new SquashRequest(
                options.Image, options.Onto, options.Tags, options.Message, options.Timestamp, !options.NoLoad, options.Output, options.Format,
                FastPath: !options.NoFastPath),
                progress, cancellationToken).ConfigureAwait(false);
        }
        progress?.Done();
        if (options.Verbose && result.Method is not null)
            await context.Error.WriteLineAsync($"layertool: squash read the image through the {result.Method}").ConfigureAwait(false);

        foreach (var warning in result.Warnings)
            await context.Error.WriteLineAsync($"layertool: warning: {warning}").ConfigureAwait(false);
        if (options.Json)
        {
            await context.Out.WriteLineAsync(JsonSerializer.Serialize(new SquashJson(
                result.ImageId,
                result.LayerDiffId.Length == 0 ? null : result.LayerDiffId,
                result.LayersBefore,
                result.LayersAfter,
                result.BytesBefore,
                result.BytesAfter,
                result.LayerBytes,
                Math.Max(0, result.BytesBefore - result.BytesAfter),
                result.Tags,
                options.Output,
                result.Warnings,
                result.Method), CliJson.Default.SquashJson)).ConfigureAwait(false);
        }
        else
        {
            await context.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"squashed {result.LayersBefore} → {result.LayersAfter} layers, {Units.Bytes(result.BytesBefore)} → {Units.Bytes(result.BytesAfter)} (reclaimed {Units.Bytes(Math.Max(0, result.BytesBefore - result.BytesAfter))}; new layer {Units.Bytes(result.LayerBytes)})"))
                .ConfigureAwait(false);
            await context.Out.WriteLineAsync(result.ImageId).ConfigureAwait(false);
        }
        return CommandErrors.Success;
    }
}
