using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using LayerTool.Docker.Squash;
using LayerTool.Docker.Images;
using LayerTool.Image;
using LayerTool.Image.Squash;
using LayerTool.Registry;

namespace LayerTool.Cli.Commands;

/// <summary>What <c>layertool squash</c> was asked to do (parsed, validated, not yet run).</summary>
/// <param name="Image">The image to squash (a reference or ID; with <see cref="Input"/>, a name inside the archive, or null for its only image or the <c>registry://</c> reference).</param>
/// <param name="Onto">The base to put the one new layer on, or null for <c>scratch</c> (or the base <see cref="BaseInput"/> names). With a <c>registry://</c> input, a registry reference.</param>
/// <param name="Tags">Tags for the result.</param>
/// <param name="Message">The squash history entry's comment.</param>
/// <param name="Output">Also write the result here (a file for docker-archive, a directory or .tar for OCI).</param>
/// <param name="Format"><c>docker</c> or <c>oci</c>.</param>
/// <param name="NoLoad">Do not load the result into the engine.</param>
/// <param name="Input">Read IMAGE (and BASE, unless <see cref="BaseInput"/>) from this archive or OCI layout, or <c>registry://REF</c>; no engine.</param>
/// <param name="BaseInput">Read BASE from this archive or OCI layout, or <c>registry://REF</c>.</param>
/// <param name="Timestamp">Reproducible mode: the clamp time (SOURCE_DATE_EPOCH, or the Unix epoch).</param>
/// <param name="Json">Print the result as JSON.</param>
/// <param name="CacheDir">Where base-filesystem indexes are cached.</param>
/// <param name="NoFastPath">Never take the local overlay2 fast path (always read through the engine API).</param>
/// <param name="Verbose">Say which way the squash went (fast path or API, and why).</param>
/// <param name="Push">Push the result to these references (no engine needed for it).</param>
/// <param name="Registry">The registry settings for registry inputs and pushes.</param>
public sealed record SquashOptions(
    string? Image,
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
    bool Verbose = false,
    IReadOnlyList<string>? Push = null,
    RegistryCliOptions? Registry = null)
{
    public bool Equals(SquashOptions? other) =>
        other is not null && Image == other.Image && Onto == other.Onto && Tags.SequenceEqual(other.Tags) && Message == other.Message
        && Output == other.Output && Format == other.Format && NoLoad == other.NoLoad && Input == other.Input && BaseInput == other.BaseInput
        && Timestamp == other.Timestamp && Json == other.Json && CacheDir == other.CacheDir
        && NoFastPath == other.NoFastPath && Verbose == other.Verbose
        && (Push ?? []).SequenceEqual(other.Push ?? []) && Equals(Registry, other.Registry);

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
    private readonly RegistryCliSymbols _registry = new(forSideUse: true);

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
        Add(PushOption);
        _registry.AddTo(this);
        FormatOption.AcceptOnlyFromAmong("docker", "oci");
        Validators.Add(result =>
        {
            var input = result.GetValue(InputOption);
            var baseInput = result.GetValue(BaseInputOption);
            var onto = result.GetValue(OntoOption);
            var image = result.GetValue(ImageArgument);
            var push = result.GetValue(PushOption) ?? [];
            if (result.GetValue(NoLoadOption) && result.GetValue(OutputOption) is null && input is null)
                result.AddError("--no-load needs --output: the result would go nowhere (an engine squash pushes what it loaded or wrote)");
            if (baseInput is not null && input is null)
                result.AddError("--base-input needs --input");
            if (input is not null && result.GetValue(OutputOption) is null && push.Length == 0)
                result.AddError("--input needs --output or --push: there is no engine to load the result into");
            if (image is null && input is null)
                result.AddError("IMAGE is required (without --input, the image in the engine to squash)");
            if (image is not null && SquashSource.IsRegistry(input))
                result.AddError($"--input {input} names the image: leave IMAGE out");
            if (SquashSource.IsRegistry(baseInput))
            {
                if (onto is not null)
                    result.AddError($"--base-input {baseInput} names the base: leave --onto out");
            }
            else if (onto is null)
            {
                result.AddError("--onto is required: the base (or 'scratch')");
            }
            if (input is null && (SquashSource.IsRegistry(onto) || SquashSource.IsRegistry(image)))
                result.AddError("registry:// images are read without an engine: give the image with --input registry://REF");
        });
        SetAction((result, ct) => CommandErrors.RunAsync(context, c => ExecuteAsync(Bind(result), _context, c), ct));
    }

    public Argument<string?> ImageArgument { get; } = new("IMAGE")
    {
        Description = "The image to squash (reference or ID; with --input, a name in the archive, left out for its only image or a registry:// input).",
        Arity = ArgumentArity.ZeroOrOne,
    };

    public Option<string?> OntoOption { get; } = new("--onto")
    {
        Description = "The base to put the new layer on (any image, ancestor or not), or 'scratch'. With --input registry://, a registry reference.",
        HelpName = "BASE",
    };

    public Option<string[]> PushOption { get; } = new("--push")
    {
        Description = "Push the result to this registry reference (no engine needed); repeatable. Prints the pushed manifest digest.",
        HelpName = "REF",
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
        Description = "Read IMAGE and BASE from this docker-archive or OCI layout, or IMAGE from registry://REF (BASE then from the registry too), instead of an engine (needs --output or --push).",
        HelpName = "ARCHIVE|OCI-DIR|registry://REF",
    };

    public Option<string?> BaseInputOption { get; } = new("--base-input")
    {
        Description = "Read BASE from this docker-archive or OCI layout, or registry://REF.",
        HelpName = "ARCHIVE|OCI-DIR|registry://REF",
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
        var onto = result.GetValue(OntoOption);
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
            result.GetValue(ImageArgument),
            onto is null || string.Equals(onto, "scratch", StringComparison.Ordinal) ? null : onto,
            result.GetValue(TagOption) ?? [],
            result.GetValue(MessageOption),
            Resolve(result.GetValue(OutputOption)),
            result.GetValue(FormatOption) ?? "docker",
            result.GetValue(NoLoadOption) || input is not null,
            ResolveInput(input),
            ResolveInput(result.GetValue(BaseInputOption)),
            timestamp,
            result.GetValue(JsonOption),
            Resolve(result.GetValue(CacheDirOption)) ?? EngineAccess.DefaultIndexCache(_environment),
            result.GetValue(NoFastPathOption),
            result.GetValue(VerboseOption),
            result.GetValue(PushOption) ?? [],
            _registry.Bind(result, _context, _environment));
    }

    private string? Resolve(string? path) => path is null ? null : Path.GetFullPath(path, _context.WorkingDirectory);

    private string? ResolveInput(string? input) => SquashSource.IsRegistry(input) ? input : Resolve(input);

    /// <summary>
    /// The one request of a squash, whichever squasher runs it. Without <c>--input</c>: IMAGE and BASE are images the
    /// engine holds. With it: IMAGE from <c>--input</c> (an archive's image by name, or <c>registry://REF</c>); BASE from
    /// <c>--base-input</c> when given, else from where IMAGE came from (a name in the same archive, or a registry
    /// reference), else scratch.
    /// </summary>
    internal static SquashRequest Request(SquashOptions options, IReadOnlyList<ImageReference> targets, CliContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        SquashSource final;
        SquashSource? baseSource;
        if (options.Input is not { } input)
        {
            final = new EngineSquashSource(options.Image ?? throw new CliException("squash needs IMAGE"));
            baseSource = options.Onto is { } onto ? new EngineSquashSource(onto) : null;
        }
        else
        {
            final = SquashSource.IsRegistry(input) ? new RegistrySquashSource(RegistryReference(input)) : new ArchiveSquashSource(input, options.Image);
            baseSource = options.BaseInput switch
            {
                { } b when SquashSource.IsRegistry(b) => new RegistrySquashSource(RegistryReference(b)),
                { } b => new ArchiveSquashSource(b, options.Onto),
                null when options.Onto is null => null,
                null when final is RegistrySquashSource || SquashSource.IsRegistry(options.Onto) => new RegistrySquashSource(RegistryReference(options.Onto)),
                null => new ArchiveSquashSource(input, options.Onto),
            };
        }
        return new SquashRequest(final, baseSource)
        {
            OutputPath = options.Output,
            OutputFormat = options.Format,
            Tags = options.Tags,
            Push = targets,
            Load = !options.NoLoad,
            FastPath = !options.NoFastPath,
            Message = options.Message,
            Timestamp = options.Timestamp,
            CacheDirectory = options.CacheDir,
            TempDirectory = context.TempDirectory,
        };
    }

    /// <summary><c>registry://REF</c> (or a bare REF) as a reference.</summary>
    private static ImageReference RegistryReference(string text) =>
        PullCommand.ParseReference(SquashSource.IsRegistry(text) ? text[SquashSource.RegistryScheme.Length..] : text);

    public static async Task<int> ExecuteAsync(SquashOptions options, CliContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        var progress = EngineAccess.Progress(context);
        var targets = (options.Push ?? []).Select(PullCommand.ParseReference).ToList();
        var registry = options.Registry;
        var viaRegistry = targets.Count > 0 || SquashSource.IsRegistry(options.Input) || SquashSource.IsRegistry(options.BaseInput) || SquashSource.IsRegistry(options.Onto);
        if (registry is null && viaRegistry)
            throw new CliException("a squash that reads from or pushes to a registry needs the registry settings");
        SquashResult result;
        var pushed = new List<(ImageReference Target, PushResult Result)>();
        var request = Request(options, targets, context);
        var squashProgress = progress is null ? null : new Progress<long>(b => progress.Report(new SquashProgress("squash", b, null)));
        if (options.Input is not null && viaRegistry)
        {
            // No engine; images from a registry and/or the result to one.
            await EngineAccess.SweepAsync(context, null, cancellationToken).ConfigureAwait(false);
            // --creds are for the registry read from (the image's, else the base's), else the one pushed to.
            var where = request.Image is RegistrySquashSource fromImage ? fromImage.Reference
                : request.Base is RegistrySquashSource fromBase ? fromBase.Reference : targets[0];
            var renderer = BlobProgressRenderer.Create(registry!.Progress, context);
            using var client = new RegistryClient(registry.ToSettings(where.Registry, renderer));
            client.MirrorFailed += (mirror, why) => context.Error.WriteLine($"layertool: mirror {mirror} failed, trying the next: {why}");
            try
            {
                result = await new RegistrySquasher(client).SquashAsync(request, squashProgress, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                renderer?.Done();
            }
            pushed.AddRange(result.Pushed);
        }
        else if (options.Input is not null)
        {
            // No engine: only the temp directories of killed runs are swept.
            await EngineAccess.SweepAsync(context, null, cancellationToken).ConfigureAwait(false);
            result = await ArchiveSquasher.SquashAsync(request, squashProgress, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            using var connection = await EngineAccess.ConnectAsync(context, cancellationToken).ConfigureAwait(false);
            var service = new EngineSquashService(new DockerImageEngine(connection), new EngineSquashSettings(options.CacheDir, context.TempDirectory));
            result = await service.SquashAsync(request, progress, cancellationToken).ConfigureAwait(false);
            progress?.Done();
            // The result is in the engine (or only in the output file): pushed from there, as `layertool push` does.
            foreach (var target in targets)
            {
                var done = options.NoLoad
                    ? await RegistryPush.PushArchiveAsync(options.Output!, target, registry!, null, context, cancellationToken).ConfigureAwait(false)
                    : await RegistryPush.PushEngineImageAsync(connection, result.ImageId, target, registry!, null, context, cancellationToken).ConfigureAwait(false);
                pushed.Add((target, done));
            }
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
                result.Method,
                pushed.Count == 0 ? null : [.. pushed.Select(p => new PushedJson(p.Target.ToString(), p.Result.Digest.ToString()))]), CliJson.Default.SquashJson)).ConfigureAwait(false);
        }
        else
        {
            await context.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"squashed {result.LayersBefore} → {result.LayersAfter} layers, {Units.Bytes(result.BytesBefore)} → {Units.Bytes(result.BytesAfter)} (reclaimed {Units.Bytes(Math.Max(0, result.BytesBefore - result.BytesAfter))}; new layer {Units.Bytes(result.LayerBytes)})"))
                .ConfigureAwait(false);
            if (pushed.Count == 0)
            {
                await context.Out.WriteLineAsync(result.ImageId).ConfigureAwait(false);
            }
            else
            {
                // As `layertool push`: the summary on stderr, the pushed manifest's digest on stdout (a line per --push).
                await context.Error.WriteLineAsync($"image ID {result.ImageId}").ConfigureAwait(false);
                foreach (var (target, done) in pushed)
                {
                    await context.Error.WriteLineAsync(RegistryPush.Summary(target, done)).ConfigureAwait(false);
                    await context.Out.WriteLineAsync(done.Digest.ToString()).ConfigureAwait(false);
                }
            }
        }
        return CommandErrors.Success;
    }
}
