using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using LayerTool.Docker.Images;
using LayerTool.Docker.Rebase;
using LayerTool.Image;
using LayerTool.Image.Rebase;
using LayerTool.Registry;
using LayerTool.Registry.Rebase;

namespace LayerTool.Cli.Commands;

/// <summary>What <c>layertool rebase</c> was asked to do (parsed, validated, not yet run).</summary>
/// <param name="Images">The images to move (one, or many with one summary table).</param>
/// <param name="Onto">The new base.</param>
/// <param name="From">The old base; null to find it.</param>
/// <param name="Tags">Tags for the result (one image only); without them an image named by a tag gets its tag moved to the result.</param>
/// <param name="Strict">Any conflict: exit 2, nothing tagged or written.</param>
/// <param name="Json">Print the report (and the result) as JSON.</param>
/// <param name="TakeBaseConfig">Base config changes to apply (<c>Env</c>, <c>Env.PATH</c>, <c>User</c>, ...).</param>
/// <param name="Input">Read the image (and the bases, unless <see cref="BaseInput"/>) from this archive or OCI layout.</param>
/// <param name="BaseInput">Read the bases from this archive or OCI layout.</param>
/// <param name="Output">Also write the result here.</param>
/// <param name="Format"><c>docker</c> or <c>oci</c>.</param>
/// <param name="NoLoad">Do not load the result into the engine.</param>
/// <param name="CacheDir">Where base filesystem indexes are cached.</param>
/// <param name="NoFastPath">Read an engine image with docker save even where the overlay2 store is local.</param>
/// <param name="Registry">With <c>--registry</c>: every reference names a registry image, and these are the registry settings; null for the engine or archives.</param>
public sealed record RebaseOptions(
    IReadOnlyList<string> Images,
    string Onto,
    string? From,
    IReadOnlyList<string> Tags,
    bool Strict,
    bool Json,
    IReadOnlyList<string> TakeBaseConfig,
    string? Input,
    string? BaseInput,
    string? Output,
    string Format,
    bool NoLoad,
    string CacheDir,
    RegistryCliOptions? Registry = null,
    bool NoFastPath = false)
{
    public bool Equals(RebaseOptions? other) =>
        other is not null && Images.SequenceEqual(other.Images) && Onto == other.Onto && From == other.From && Tags.SequenceEqual(other.Tags)
        && Strict == other.Strict && Json == other.Json && TakeBaseConfig.SequenceEqual(other.TakeBaseConfig) && Input == other.Input
        && BaseInput == other.BaseInput && Output == other.Output && Format == other.Format && NoLoad == other.NoLoad && CacheDir == other.CacheDir && Equals(Registry, other.Registry) && NoFastPath == other.NoFastPath;

    public override int GetHashCode() => HashCode.Combine(Images.Count, Onto, From, Tags.Count, Output);
}

/// <summary>
/// <c>layertool rebase IMAGE --onto NEWBASE [--from OLDBASE] -t TAG</c>: the new base's layers, then IMAGE's own
/// layers unchanged, config and history rebuilt; and a report of every patch of the new base that IMAGE's own
/// layers hide. <c>layertool rebase --onto NEWBASE IMG...</c> does the same over many images.
/// </summary>
internal sealed class RebaseCommand : Command
{
    private static readonly string[] TableHeader = ["IMAGE", "OLD BASE", "NEW", "CONFLICTS"];

    private readonly Func<string, string?> _environment;
    private readonly CliContext _context;
    private readonly RegistryCliSymbols _registry = new();

    public RebaseCommand(CliContext context, Func<string, string?> environment)
        : base("rebase", "Move IMAGE's own layers onto NEWBASE, unchanged, and report every patch of NEWBASE that those layers hide.")
    {
        _context = context ?? throw new ArgumentNullException(nameof(context));
        _environment = environment ?? throw new ArgumentNullException(nameof(environment));
        Add(ImagesArgument);
        Add(OntoOption);
        Add(FromOption);
        Add(TagOption);
        Add(StrictOption);
        Add(JsonOption);
        Add(TakeBaseConfigOption);
        Add(InputOption);
        Add(BaseInputOption);
        Add(OutputOption);
        Add(FormatOption);
        Add(NoLoadOption);
        Add(CacheDirOption);
        Add(RegistryOption);
        Add(NoFastPathOption);
        Add(_registry.Platform);
        Add(_registry.Mirrors);
        Add(_registry.Insecure);
        Add(_registry.Creds);
        FormatOption.AcceptOnlyFromAmong("docker", "oci");
        Validators.Add(result =>
        {
            var images = result.GetValue(ImagesArgument) ?? [];
            if (images.Length > 1 && (result.GetValue(TagOption)?.Length ?? 0) > 0)
                result.AddError("-t names one result: with several images, each image's own tag is moved to its result");
            if (images.Length > 1 && result.GetValue(OutputOption) is not null)
                result.AddError("--output holds one image: rebase several images into the engine");
            if (result.GetValue(NoLoadOption) && result.GetValue(OutputOption) is null)
                result.AddError("--no-load needs --output: the result would go nowhere");
            if (result.GetValue(BaseInputOption) is not null && result.GetValue(InputOption) is null)
                result.AddError("--base-input needs --input");
            if (result.GetValue(InputOption) is not null && result.GetValue(OutputOption) is null)
                result.AddError("--input needs --output: there is no engine to load the result into");
            if (result.GetValue(RegistryOption)
                && (result.GetValue(InputOption) is not null || result.GetValue(OutputOption) is not null || result.GetValue(NoLoadOption)))
                result.AddError("--registry rebases in the registry: --input, --output and --no-load do not apply");
            if (!result.GetValue(RegistryOption)
                && (result.GetValue(_registry.Creds) is not null || (result.GetValue(_registry.Insecure)?.Length ?? 0) > 0
                    || (result.GetValue(_registry.Mirrors)?.Length ?? 0) > 0 || result.GetValue(_registry.Platform) is not null))
                result.AddError("--creds, --insecure-registry, --registry-mirror and --platform need --registry");
        });
        SetAction((result, ct) => CommandErrors.RunAsync(context, c => ExecuteAsync(Bind(result), _context, c), ct));
    }

    public Argument<string[]> ImagesArgument { get; } = new("IMAGE")
    {
        Description = "The image(s) to rebase (reference or ID; with --input, a name in the archive).",
        Arity = ArgumentArity.OneOrMore,
    };

    public Option<string> OntoOption { get; } = new("--onto") { Description = "The new base.", HelpName = "NEWBASE", Required = true };

    public Option<string?> FromOption { get; } = new("--from")
    {
        Description = "The old base (default: the image's org.opencontainers.image.base.* labels, else the longest local prefix of its layers).",
        HelpName = "OLDBASE",
    };

    public Option<string[]> TagOption { get; } = new("--tag", "-t") { Description = "Tag the result; repeatable.", HelpName = "NAME[:TAG]" };

    public Option<bool> StrictOption { get; } = new("--strict") { Description = "Any conflict: exit 2 and tag or write nothing." };

    public Option<bool> JsonOption { get; } = new("--json") { Description = "Print the conflict report and the result as JSON." };

    public Option<string[]> TakeBaseConfigOption { get; } = new("--take-base-config")
    {
        Description = "Apply the new base's value of a config field that differs between the bases: Env, Env.NAME, Labels, Labels.NAME, User, WorkingDir, Entrypoint, Cmd; repeatable.",
        HelpName = "KEY",
    };

    public Option<string?> InputOption { get; } = new("--input")
    {
        Description = "Read IMAGE and the bases from this docker-archive or OCI layout instead of an engine (needs --output).",
        HelpName = "ARCHIVE|OCI-DIR",
    };

    public Option<string?> BaseInputOption { get; } = new("--base-input")
    {
        Description = "Read the bases from this docker-archive or OCI layout.",
        HelpName = "ARCHIVE|OCI-DIR",
    };

    public Option<string?> OutputOption { get; } = new("--output", "-o")
    {
        Description = "Also write the result here: a docker-archive tar, or an OCI layout (directory, or a .tar).",
        HelpName = "PATH",
    };

    public Option<string> FormatOption { get; } = new("--format") { Description = "Format of --output: docker or oci.", DefaultValueFactory = _ => "docker" };

    public Option<bool> NoLoadOption { get; } = new("--no-load") { Description = "Do not load the result into the engine (needs --output)." };

    public Option<bool> NoFastPathOption { get; } = new("--no-fast-path")
    {
        Description = "Read the image with docker save even where the engine's overlay2 store is local and readable.",
    };

    public Option<bool> RegistryOption { get; } = new("--registry")
    {
        Description = "IMAGE, NEWBASE, OLDBASE and the tags are registry references (e.g. localhost:5000/app:1): rebase in the registry, moving manifests only (layers are mounted, never transferred).",
    };

    public Option<string?> CacheDirOption { get; } = new("--cache-dir")
    {
        Description = "Where base filesystem indexes are cached (default: $XDG_CACHE_HOME or ~/.cache, /layertool/index).",
        HelpName = "DIR",
    };

    public RebaseOptions Bind(ParseResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var input = result.GetValue(InputOption);
        return new RebaseOptions(
            result.GetValue(ImagesArgument) ?? [],
            result.GetValue(OntoOption)!,
            result.GetValue(FromOption),
            result.GetValue(TagOption) ?? [],
            result.GetValue(StrictOption),
            result.GetValue(JsonOption),
            result.GetValue(TakeBaseConfigOption) ?? [],
            Resolve(input),
            Resolve(result.GetValue(BaseInputOption)),
            Resolve(result.GetValue(OutputOption)),
            result.GetValue(FormatOption) ?? "docker",
            result.GetValue(NoLoadOption) || input is not null,
            Resolve(result.GetValue(CacheDirOption)) ?? EngineAccess.DefaultIndexCache(_environment),
            result.GetValue(RegistryOption) ? BindRegistry(result) : null,
            result.GetValue(NoFastPathOption));
    }

    /// <summary>The registry settings of <c>--registry</c>: the blob cache and docker config as pull and push use them; no progress (no blob is transferred).</summary>
    private RegistryCliOptions BindRegistry(ParseResult result) => new(
        6,
        result.GetValue(_registry.Platform),
        result.GetValue(_registry.Mirrors) ?? [],
        result.GetValue(_registry.Insecure) ?? [],
        result.GetValue(_registry.Creds),
        RegistryCliSymbols.DefaultCache(_environment),
        RegistryCliSymbols.DockerConfigPath(_environment),
        "none");

    private string? Resolve(string? path) => path is null ? null : Path.GetFullPath(path, _context.WorkingDirectory);

    public static async Task<int> ExecuteAsync(RebaseOptions options, CliContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        foreach (var key in options.TakeBaseConfig) _ = BaseConfigDiff.Normalize(key);
        var outcomes = new List<RebaseOutcome>();
        var pushed = new List<RegistryRebaseOutcome>();
        if (options.Registry is not null)
        {
            pushed.AddRange(await RegistryRebaseAsync(options, cancellationToken).ConfigureAwait(false));
            outcomes.AddRange(pushed.Select(p => p.Outcome));
        }
        else if (options.Input is not null)
        {
            if (options.Images.Count != 1) throw new CliException("--input rebases one image at a time");
            outcomes.Add(await ArchiveRebaser.RebaseAsync(new ArchiveRebaseRequest(
                options.Input, options.Images[0], options.Onto, options.From, options.BaseInput, options.Output!, options.Format, options.Tags,
                options.Strict, options.TakeBaseConfig), cancellationToken).ConfigureAwait(false));
        }
        else
        {
            using var connection = await EngineAccess.ConnectAsync(context, cancellationToken).ConfigureAwait(false);
            var service = new EngineRebaseService(new DockerImageEngine(connection), new DockerImageLister(connection), new EngineRebaseSettings(options.CacheDir, FastPath: !options.NoFastPath));
            foreach (var image in options.Images)
            {
                var tags = options.Tags.Count > 0 || (options.Images.Count == 1 && options.NoLoad) ? options.Tags : InPlaceTag(image);
                outcomes.Add(await service.RebaseAsync(new EngineRebaseRequest(
                    image, options.Onto, options.From, tags, options.Strict, options.TakeBaseConfig, !options.NoLoad, options.Output, options.Format),
                    cancellationToken).ConfigureAwait(false));
            }
        }

        var refused = options.Strict && outcomes.Any(o => !o.Delivered);
        if (options.Json)
        {
            var items = new JsonArray();
            for (var i = 0; i < outcomes.Count; i++)
            {
                var item = ToJson(outcomes[i]);
                if (pushed.Count > 0) AddRegistryJson(item, pushed[i]);
                items.Add((JsonNode)item);
            }

            JsonNode json = outcomes.Count == 1 && options.Images.Count == 1 ? items[0]!.DeepClone() : new JsonObject { ["images"] = items.DeepClone() };
            await context.Out.WriteLineAsync(json.ToJsonString()).ConfigureAwait(false);
        }
        else if (options.Images.Count == 1)
        {
            var o = outcomes[0];
            foreach (var line in o.Report.ToLines()) await context.Error.WriteLineAsync(line).ConfigureAwait(false);
            if (pushed.Count > 0)
            {
                await context.Error.WriteLineAsync(RegistrySummary(pushed[0])).ConfigureAwait(false);
                if (pushed[0].ManifestDigest is { } digest) await context.Out.WriteLineAsync(digest.ToString()).ConfigureAwait(false);
            }
            else
            {
                await context.Error.WriteLineAsync(Summary(o)).ConfigureAwait(false);
                if (o.ImageId is not null) await context.Out.WriteLineAsync(o.ImageId).ConfigureAwait(false);
            }
        }
        else
        {
            foreach (var o in outcomes)
            {
                foreach (var line in o.Report.ToLines()) await context.Error.WriteLineAsync($"{o.Report.Image}: {line}").ConfigureAwait(false);
            }

            await WriteTableAsync(context.Out, outcomes).ConfigureAwait(false);
        }

        if (refused)
        {
            await context.Error.WriteLineAsync("layertool: --strict: conflicts found; nothing was tagged or written for the images that have them").ConfigureAwait(false);
            return CommandErrors.Usage;
        }

        return CommandErrors.Success;
    }

    /// <summary>
    /// <c>--registry</c>: each image rebased in its registry (a manifest-only rebase, <see cref="RegistryRebaser"/>). Without
    /// <c>-t</c> the result goes under the image's own tag (or, for an image named by digest, under its digest).
    /// </summary>
    private static async Task<List<RegistryRebaseOutcome>> RegistryRebaseAsync(RebaseOptions options, CancellationToken cancellationToken)
    {
        var registry = options.Registry!;
        var onto = PullCommand.ParseReference(options.Onto);
        var from = options.From is null ? (ImageReference?)null : PullCommand.ParseReference(options.From);
        var images = options.Images.Select(PullCommand.ParseReference).ToList();
        var targets = options.Tags.Select(PullCommand.ParseReference).ToList();
        if (targets.Count > 1) throw new CliException("--registry: -t names the one manifest to push; tag it further with the registry's tools");
        if (targets.Any(t => t.Digest is not null)) throw new CliException("--registry: -t takes a tag, not a digest (the manifest's digest is the registry's to compute)");
        using var client = new RegistryClient(registry.ToSettings(images[0].Registry, null));
        var rebaser = new RegistryRebaser(client, new RegistryRebaseSettings(options.CacheDir));
        var outcomes = new List<RegistryRebaseOutcome>();
        for (var i = 0; i < images.Count; i++)
        {
            outcomes.Add(await rebaser.RebaseAsync(new RegistryRebaseRequest(images[i], onto, from, targets.Count > 0 ? targets[0] : null, options.Strict,
                options.TakeBaseConfig, new RegistryRebaseNames(options.Images[i], options.Onto, options.From)), cancellationToken).ConfigureAwait(false));
        }

        return outcomes;
    }

    private static string RegistrySummary(RegistryRebaseOutcome p)
    {
        var o = p.Outcome;
        var what = o.Delivered
            ? string.Create(CultureInfo.InvariantCulture,
                $"rebased {o.Report.Image} from {o.Report.OldBase} ({o.Report.OldBaseFoundBy}) onto {o.Report.NewBase}: {o.OwnLayers} own layer(s) kept")
            : $"not rebased {o.Report.Image}: --strict and conflicts found";
        var read = string.Create(CultureInfo.InvariantCulture,
            $"; file lists: {p.LayersStreamed} own layer(s) streamed, {p.LayersFromCache} cached; {p.BaseLayersStreamed} base layer(s) streamed to index");
        var push = p.Target is { } target
            ? string.Create(CultureInfo.InvariantCulture,
                $"; pushed {target.FamiliarString} ({p.Mounted} layer(s) mounted, no layer uploaded, {Units.Bytes(p.UploadedBytes)} of config and manifest)")
            : "";
        return string.Create(CultureInfo.InvariantCulture, $"{what}; {o.Report.ConflictCount} conflict(s){read}{push}");
    }

    private static void AddRegistryJson(JsonObject json, RegistryRebaseOutcome p)
    {
        json["target"] = p.Target?.ToString();
        json["manifestDigest"] = p.ManifestDigest?.ToString();
        json["mounted"] = p.Mounted;
        json["uploadedBytes"] = p.UploadedBytes;
        json["layersStreamed"] = p.LayersStreamed;
        json["layersFromCache"] = p.LayersFromCache;
        json["baseLayersStreamed"] = p.BaseLayersStreamed;
    }

    /// <summary>Without -t, an image named by a tag (not an ID or digest) has that tag moved to its result.</summary>
    private static string[] InPlaceTag(string image)
    {
        var bare = image.StartsWith("sha256:", StringComparison.Ordinal) ? image["sha256:".Length..] : image;
        if (bare.Length >= 12 && bare.All(char.IsAsciiHexDigitLower)) return [];
        return image.Contains('@', StringComparison.Ordinal) ? [] : [image];
    }

    private static string Summary(RebaseOutcome o)
    {
        var conflicts = o.Report.ConflictCount;
        var what = o.Delivered
            ? string.Create(CultureInfo.InvariantCulture,
                $"rebased {o.Report.Image} from {o.Report.OldBase} ({o.Report.OldBaseFoundBy}) onto {o.Report.NewBase}: {o.OwnLayers} own layer(s) kept")
            : $"not rebased {o.Report.Image}: --strict and conflicts found";
        var load = o.LoadedWith is null ? "" : string.Create(CultureInfo.InvariantCulture, $"; loaded with {o.LoadedWith}, {Units.Bytes(o.BytesSent)} sent");
        var tags = o.Tags.Count == 0 ? "" : "; tagged " + string.Join(", ", o.Tags);
        return string.Create(CultureInfo.InvariantCulture, $"{what}; {conflicts} conflict(s){load}{tags}");
    }

    private static JsonObject ToJson(RebaseOutcome o)
    {
        var json = o.Report.ToJson();
        json["imageId"] = o.ImageId;
        json["tags"] = new JsonArray([.. o.Tags.Select(t => (JsonNode)JsonValue.Create(t))]);
        json["output"] = o.Output;
        json["ownLayers"] = o.OwnLayers;
        json["bytesSent"] = o.BytesSent;
        json["loadedWith"] = o.LoadedWith;
        json["readWith"] = o.ReadWith;
        return json;
    }

    private static async Task WriteTableAsync(TextWriter output, List<RebaseOutcome> outcomes)
    {
        var rows = new List<string[]> { TableHeader };
        rows.AddRange(outcomes.Select(o => new[]
        {
            o.Report.Image,
            o.Report.OldBase,
            o.Delivered ? (o.Tags.Count > 0 ? string.Join(",", o.Tags) : o.ImageId!) : "(not rebased)",
            o.Report.ConflictCount.ToString(CultureInfo.InvariantCulture),
        }));
        var widths = Enumerable.Range(0, 4).Select(c => rows.Max(r => r[c].Length)).ToArray();
        foreach (var row in rows)
        {
            var line = string.Join("  ", row.Select((cell, c) => c == 3 ? cell : cell.PadRight(widths[c])));
            await output.WriteLineAsync(line).ConfigureAwait(false);
        }
    }
}
