using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using LayerTool.Docker.Images;
using LayerTool.Image;
using LayerTool.Image.Formats;
using LayerTool.Registry;
using LayerTool.Registry.Auth;

namespace LayerTool.Cli.Commands;

/// <summary>The registry settings every registry verb takes (parsed, not yet applied).</summary>
/// <param name="Jobs">Blobs transferred at once.</param>
/// <param name="Platform">os/arch[/variant], or null for the machine's.</param>
/// <param name="Mirrors">--registry-mirror values (URL, or HOST=URL).</param>
/// <param name="Insecure">Hosts allowed plain HTTP.</param>
/// <param name="Creds">USER:PASSWORD for the reference's registry.</param>
/// <param name="CacheDir">The blob cache.</param>
/// <param name="DockerConfig">The docker config.json with credentials.</param>
/// <param name="Progress">auto, plain, json or none.</param>
public sealed record RegistryCliOptions(int Jobs, string? Platform, IReadOnlyList<string> Mirrors, IReadOnlyList<string> Insecure, string? Creds,
    string CacheDir, string DockerConfig, string Progress)
{
    public bool Equals(RegistryCliOptions? other) =>
        other is not null && Jobs == other.Jobs && Platform == other.Platform && Mirrors.SequenceEqual(other.Mirrors) && Insecure.SequenceEqual(other.Insecure)
        && Creds == other.Creds && CacheDir == other.CacheDir && DockerConfig == other.DockerConfig && Progress == other.Progress;

    public override int GetHashCode() => HashCode.Combine(Jobs, Platform, Mirrors.Count, CacheDir);

    /// <summary>The client settings for work on <paramref name="registry"/> (whose credentials <see cref="Creds"/> are).</summary>
    public RegistrySettings ToSettings(string registry, IProgress<BlobProgress>? progress)
    {
        ICredentialSource credentials = new DockerConfigCredentials(DockerConfig);
        if (Creds is not null)
            credentials = new FixedCredentials(registry, FixedCredentials.ParseUserPassword(Creds), credentials);
        return new RegistrySettings
        {
            CacheDirectory = CacheDir,
            Jobs = Jobs,
            Platform = Platform is null ? RegistryPlatform.Default : RegistryPlatform.Parse(Platform),
            Mirrors = [.. Mirrors.Select(RegistryMirror.Parse)],
            InsecureRegistries = Insecure,
            Credentials = credentials,
            Progress = progress,
            UserAgent = "layertool/" + LayerToolApp.Version.Split('+')[0],
        };
    }
}

/// <summary>The options the registry verbs share, declared once.</summary>
internal sealed class RegistryCliSymbols
{
    public Option<int> Jobs { get; } = new("--jobs", "-j") { Description = "Blobs transferred at once.", DefaultValueFactory = _ => 6 };

    public Option<string?> Platform { get; } = new("--platform") { Description = "The platform to choose from a multi-platform image (default: linux and this machine's architecture).", HelpName = "OS/ARCH[/VARIANT]" };

    public Option<string[]> Mirrors { get; } = new("--registry-mirror")
    {
        Description = "A mirror tried before the registry, in order; repeatable. URL mirrors docker.io (as dockerd's registry-mirrors); HOST=URL mirrors HOST.",
        HelpName = "URL|HOST=URL",
    };

    public Option<string[]> Insecure { get; } = new("--insecure-registry") { Description = "Allow plain HTTP to this host (localhost and loopback addresses always are); repeatable.", HelpName = "HOST[:PORT]" };

    public Option<string?> Creds { get; } = new("--creds") { Description = "Credentials for the registry (default: docker's config.json and credential helpers, else anonymous).", HelpName = "USER:PASSWORD" };

    public Option<string?> CacheDir { get; } = new("--cache-dir") { Description = "The blob cache (default: $XDG_CACHE_HOME or ~/.cache, /layertool/registry).", HelpName = "DIR" };

    public Option<string> Progress { get; } = new("--progress") { Description = "Progress on stderr: auto (a line a layer on a terminal, plain otherwise), plain, json or none.", DefaultValueFactory = _ => "auto" };

    public void AddTo(Command command)
    {
        command.Add(Jobs);
        command.Add(Platform);
        command.Add(Mirrors);
        command.Add(Insecure);
        command.Add(Creds);
        command.Add(CacheDir);
        command.Add(Progress);
        Progress.AcceptOnlyFromAmong("auto", "plain", "json", "none");
        Jobs.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() < 1) result.AddError("--jobs must be at least 1");
        });
    }

    public RegistryCliOptions Bind(ParseResult result, CliContext context, Func<string, string?> environment)
    {
        var cacheDir = result.GetValue(CacheDir);
        return new RegistryCliOptions(
            result.GetValue(Jobs),
            result.GetValue(Platform),
            result.GetValue(Mirrors) ?? [],
            result.GetValue(Insecure) ?? [],
            result.GetValue(Creds),
            cacheDir is null ? DefaultCache(environment) : Path.GetFullPath(cacheDir, context.WorkingDirectory),
            DockerConfigPath(environment),
            result.GetValue(Progress) ?? "auto");
    }

    /// <summary><c>$XDG_CACHE_HOME/layertool/registry</c>, else <c>~/.cache/layertool/registry</c>.</summary>
    public static string DefaultCache(Func<string, string?> environment) =>
        Path.Combine(Path.GetDirectoryName(EngineAccess.DefaultIndexCache(environment))!, "registry");

    /// <summary><c>$DOCKER_CONFIG/config.json</c>, else <c>~/.docker/config.json</c>.</summary>
    public static string DockerConfigPath(Func<string, string?> environment)
    {
        var dir = environment("DOCKER_CONFIG");
        if (string.IsNullOrWhiteSpace(dir))
        {
            var home = environment("HOME");
            dir = Path.Combine(string.IsNullOrWhiteSpace(home) ? "/root" : home, ".docker");
        }
        return Path.Combine(dir, "config.json");
    }
}

/// <summary>What <c>layertool pull</c> was asked to do.</summary>
/// <param name="Reference">The image reference.</param>
/// <param name="Output">Write the image here (a file: docker-archive; a directory: OCI layout).</param>
/// <param name="Format">docker or oci, or null to choose by <see cref="Output"/>.</param>
/// <param name="Load">Load the image into the engine.</param>
/// <param name="Registry">The registry settings.</param>
public sealed record PullOptions(string Reference, string? Output, string? Format, bool Load, RegistryCliOptions Registry);

/// <summary><c>layertool pull REF</c>: layers fetched in parallel, verified and resumable, into a file, an OCI layout or the engine.</summary>
internal sealed class PullCommand : Command
{
    private readonly RegistryCliSymbols _registry = new();

    public PullCommand(CliContext context, Func<string, string?> environment)
        : base("pull", "Pull an image from a registry without the engine: layers in parallel, verified, resumed after a cut; into a file, an OCI layout or the engine.")
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(environment);
        Add(ReferenceArgument);
        Add(OutputOption);
        Add(FormatOption);
        Add(LoadOption);
        _registry.AddTo(this);
        FormatOption.AcceptOnlyFromAmong("docker", "oci");
        Validators.Add(result =>
        {
            if (result.GetValue(OutputOption) is null && !result.GetValue(LoadOption))
                result.AddError("pull needs -o PATH or --load: the image would go nowhere");
        });
        SetAction((result, ct) => CommandErrors.RunAsync(context, c => ExecuteAsync(Bind(result, context, environment), context, c), ct));
    }

    public Argument<string> ReferenceArgument { get; } = new("REF") { Description = "The image, e.g. busybox, localhost:5000/app:1, repo@sha256:…" };

    public Option<string?> OutputOption { get; } = new("--output", "-o")
    {
        Description = "Write the image here: a file gets a docker-archive, a directory (existing, or ending in /) an OCI layout.",
        HelpName = "FILE|DIR",
    };

    public Option<string?> FormatOption { get; } = new("--format") { Description = "docker (archive file) or oci (layout directory, or a tar with a file name)." };

    public Option<bool> LoadOption { get; } = new("--load") { Description = "Load the image into the engine, sending only the layers it lacks." };

    public PullOptions Bind(ParseResult result, CliContext context, Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(context);
        var output = result.GetValue(OutputOption);
        return new PullOptions(result.GetValue(ReferenceArgument)!,
            output is null ? null : Path.GetFullPath(output, context.WorkingDirectory) + (output.EndsWith('/') ? "/" : ""),
            result.GetValue(FormatOption), result.GetValue(LoadOption), _registry.Bind(result, context, environment));
    }

    public static async Task<int> ExecuteAsync(PullOptions options, CliContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        var reference = ParseReference(options.Reference);
        var (format, asDirectory) = OutputFormat(options);
        var renderer = BlobProgressRenderer.Create(options.Registry.Progress, context);
        using var client = new RegistryClient(options.Registry.ToSettings(reference.Registry, renderer));
        client.MirrorFailed += (mirror, why) => context.Error.WriteLine($"layertool: mirror {mirror} failed, trying the next: {why}");
        PulledImage image;
        try
        {
            image = await new ImagePuller(client).PullAsync(reference, null, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            renderer?.Done();
        }

        if (options.Output is not null)
        {
            var path = options.Output.TrimEnd('/');
            if (asDirectory) await ImagePuller.WriteOciLayoutAsync(image, path, cancellationToken).ConfigureAwait(false);
            else await ImagePuller.WriteArchiveAsync(image, path, format, cancellationToken).ConfigureAwait(false);
            await context.Error.WriteLineAsync($"wrote {reference.FamiliarString} to {path} ({(format == ImageArchiveFormat.DockerArchive ? "docker-archive" : "OCI layout")})").ConfigureAwait(false);
        }

        if (options.Load)
        {
            using var connection = await EngineAccess.ConnectAsync(context, cancellationToken).ConfigureAwait(false);
            var loaded = await EngineLoad.LoadAsync(new DockerImageEngine(connection), image, cancellationToken).ConfigureAwait(false);
            await context.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"loaded {reference.FamiliarString} into the engine ({loaded.SentLayers} of {image.Layers.Count} layers sent, {Units.Bytes(loaded.SentBytes)})")).ConfigureAwait(false);
        }

        await context.Out.WriteLineAsync(image.ManifestDigest.ToString()).ConfigureAwait(false);
        return CommandErrors.Success;
    }

    internal static ImageReference ParseReference(string text)
    {
        if (!ImageReference.TryParse(text, out var reference, out var error)) throw new CliException(error);
        return reference;
    }

    private static (ImageArchiveFormat Format, bool AsDirectory) OutputFormat(PullOptions options)
    {
        if (options.Output is null) return (ImageArchiveFormat.DockerArchive, false);
        var directory = options.Output.EndsWith('/') || Directory.Exists(options.Output);
        return options.Format switch
        {
            "docker" when directory => throw new CliException($"{options.Output} is a directory: a docker-archive is a file (use --format oci for an OCI layout)"),
            "docker" => (ImageArchiveFormat.DockerArchive, false),
            "oci" => (ImageArchiveFormat.OciLayout, directory || !options.Output.EndsWith(".tar", StringComparison.Ordinal)),
            _ => directory ? (ImageArchiveFormat.OciLayout, true) : (ImageArchiveFormat.DockerArchive, false),
        };
    }
}

/// <summary>
/// Loads a pulled image into the engine sending only the layers it lacks: the engine's longest chain of the
/// image's layers is found with probe loads of configs naming a prefix of the layers and holding none (a load
/// that omits a layer the engine lacks fails, one that omits only layers it has succeeds; each probe image is
/// removed again), then one docker-archive omitting that prefix is loaded, as squash loads its partial archives.
/// </summary>
internal static class EngineLoad
{
    public static async Task<(string ImageId, int SentLayers, long SentBytes)> LoadAsync(IImageEngine engine, PulledImage image, CancellationToken cancellationToken)
    {
        var expected = image.Config.DiffIds.Select(d => d.ToString()).ToList();
        var name = image.Reference.Tag is { } tag ? image.Reference.WithTag(tag) : (ImageReference?)null;
        var existing = await engine.TryInspectImageAsync(image.Config.Digest.ToString(), cancellationToken).ConfigureAwait(false);
        if (existing is not null && existing.DiffIds.SequenceEqual(expected, StringComparer.Ordinal))
        {
            if (name is { } n) await engine.TagImageAsync(existing.Id, n.FamiliarString, cancellationToken).ConfigureAwait(false);
            return (existing.Id, 0, 0);
        }

        var store = await engine.GetStoreKindAsync(cancellationToken).ConfigureAwait(false);
        var omit = 0;
        if (store == ImageStoreKind.GraphDriver)
        {
            var (lo, hi) = (0, image.Layers.Count - 1);
            while (lo < hi)
            {
                var mid = (lo + hi + 1) / 2;
                if (await EngineHasPrefixAsync(engine, image, mid, cancellationToken).ConfigureAwait(false)) lo = mid;
                else hi = mid - 1;
            }
            omit = lo;
        }

        var format = store == ImageStoreKind.Containerd ? ImageArchiveFormat.DockerOciArchive : ImageArchiveFormat.DockerArchive;
        var loadedId = await LoadArchiveAsync(engine, image, new ImageWriteOptions { Format = format, OmitLayers = omit, Tags = name is { } t ? [t] : [] },
            name?.ToString() ?? image.Config.Digest.ToString(), expected, cancellationToken).ConfigureAwait(false);
        if (loadedId is null && omit > 0)
        {
            // The engine refused the partial archive after all: the whole image.
            omit = 0;
            loadedId = await LoadArchiveAsync(engine, image, new ImageWriteOptions { Format = format, Tags = name is { } t2 ? [t2] : [] },
                name?.ToString() ?? image.Config.Digest.ToString(), expected, cancellationToken).ConfigureAwait(false);
        }

        if (loadedId is null)
            throw new LayerTool.Build.EngineException($"the engine loaded {image.Reference.FamiliarString} but its layers are not the image's ({string.Join(", ", expected)})");
        var sent = image.Layers.Skip(omit).Sum(l => l.Descriptor?.Size ?? 0);
        return (loadedId, image.Layers.Count - omit, sent);
    }

    private static async Task<bool> EngineHasPrefixAsync(IImageEngine engine, PulledImage image, int count, CancellationToken cancellationToken)
    {
        // The engine refuses a config with more non-empty history entries than layers: keep those of the prefix.
        var config = image.Config.WithDiffIds(image.Config.DiffIds.Take(count)).Edit(json =>
        {
            if (json["history"] is not System.Text.Json.Nodes.JsonArray history) return;
            static bool Empty(System.Text.Json.Nodes.JsonNode? h) =>
                h is System.Text.Json.Nodes.JsonObject o && o["empty_layer"] is System.Text.Json.Nodes.JsonValue v && v.TryGetValue<bool>(out var e) && e;
            while (history.Count > 0 && history.Count(h => !Empty(h)) > count) history.RemoveAt(history.Count - 1);
        });
        var probe = new ComposedImage(config, [.. image.Layers.Take(count).Select(l => new DescribedLayer(l.DiffId, l.Descriptor))]);
        var before = await engine.TryInspectImageAsync(config.Digest.ToString(), cancellationToken).ConfigureAwait(false);
        if (before is not null) return true;
        try
        {
            var id = await LoadArchiveAsync(engine, probe, new ImageWriteOptions { Format = ImageArchiveFormat.DockerArchive, OmitLayers = count },
                config.Digest.ToString(), [.. config.DiffIds.Select(d => d.ToString())], cancellationToken).ConfigureAwait(false);
            return id is not null;
        }
        catch (LayerTool.Build.EngineException)
        {
            return false;
        }
        finally
        {
            await engine.RemoveImageAsync(config.Digest.ToString(), CancellationToken.None).ConfigureAwait(false);
        }
    }

    private static async Task<string?> LoadArchiveAsync(IImageEngine engine, IImage image, ImageWriteOptions options, string lookup, IReadOnlyList<string> expected,
        CancellationToken cancellationToken)
    {
        var path = Path.Combine(Path.GetTempPath(), $"layertool-pull-load-{Guid.NewGuid():N}.tar");
        try
        {
            await ImageArchiveWriter.WriteAsync(path, image, options, cancellationToken).ConfigureAwait(false);
            var archive = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan | FileOptions.Asynchronous);
            await using (archive.ConfigureAwait(false))
                await engine.LoadImageAsync(archive, cancellationToken).ConfigureAwait(false);
            var loaded = await engine.TryInspectImageAsync(lookup, cancellationToken).ConfigureAwait(false);
            return loaded is not null && loaded.DiffIds.SequenceEqual(expected, StringComparer.Ordinal) ? loaded.Id : null;
        }
        finally
        {
            File.Delete(path);
        }
    }
}

/// <summary>
/// Blob progress on stderr: on a terminal a line a blob (bytes, rate, resumes) redrawn in place; <c>plain</c> a
/// line when a blob starts, resumes and ends; <c>json</c> one JSON object per event.
/// </summary>
internal sealed class BlobProgressRenderer : IProgress<BlobProgress>
{
    private readonly TextWriter _error;
    private readonly string _mode;
    private readonly Lock _gate = new();
    private readonly List<Digest> _order = [];
    private readonly Dictionary<Digest, (BlobProgress Last, long Started, BlobState Shown)> _blobs = [];
    private int _drawn;
    private long _lastDraw;

    private BlobProgressRenderer(TextWriter error, string mode)
    {
        _error = error;
        _mode = mode;
    }

    public static BlobProgressRenderer? Create(string mode, CliContext context)
    {
        var terminal = ReferenceEquals(context.Error, Console.Error) && !Console.IsErrorRedirected;
        return mode switch
        {
            "none" => null,
            "auto" => new BlobProgressRenderer(context.Error, terminal ? "tty" : "plain"),
            _ => new BlobProgressRenderer(context.Error, mode),
        };
    }

    public void Report(BlobProgress value)
    {
        lock (_gate)
        {
            var now = Environment.TickCount64;
            var known = _blobs.TryGetValue(value.Digest, out var entry);
            if (!known)
            {
                _order.Add(value.Digest);
                entry = (value, now, (BlobState)(-1));
            }
            var changed = entry.Shown != value.State || value.State == BlobState.Retrying;
            _blobs[value.Digest] = (value, entry.Started, value.State);
            switch (_mode)
            {
                case "json":
                    if (changed || now - _lastDraw >= 1000)
                    {
                        _lastDraw = now;
                        _error.WriteLine(Json(value));
                    }
                    break;
                case "plain":
                    if (changed && value.State != BlobState.Transferring || !known)
                        _error.WriteLine(Line(value, entry.Started, now));
                    break;
                default:
                    if (changed || now - _lastDraw >= 100) Redraw(now);
                    break;
            }
        }
    }

    public void Done()
    {
        lock (_gate)
        {
            if (_mode == "tty") Redraw(Environment.TickCount64);
        }
    }

    private void Redraw(long now)
    {
        _lastDraw = now;
        if (_drawn > 0) _error.Write($"\x1b[{_drawn}A");
        foreach (var digest in _order)
        {
            var (last, started, _) = _blobs[digest];
            _error.Write("\r\x1b[K" + Line(last, started, now) + "\n");
        }
        _drawn = _order.Count;
        _error.Flush();
    }

    private static string Line(BlobProgress p, long started, long now)
    {
        var seconds = Math.Max(0.001, (now - started) / 1000.0);
        var rate = p.Transferred / seconds;
        var state = p.State switch
        {
            BlobState.Exists => "already there",
            BlobState.Mounted => "mounted from " + p.Message,
            BlobState.Done => "done",
            BlobState.Retrying => "retrying: " + p.Message,
            _ => "",
        };
        return string.Create(CultureInfo.InvariantCulture,
            $"{p.Digest.Hex[..12]}  {Units.Bytes(p.Offset),9} / {Units.Bytes(p.Size),-9} {Units.Bytes((long)rate),9}/s{(p.Resumes > 0 ? $"  {p.Resumes} resume(s)" : "")}  {state}");
    }

    private static string Json(BlobProgress p)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("digest", p.Digest.ToString());
            json.WriteNumber("size", p.Size);
            json.WriteNumber("offset", p.Offset);
            json.WriteNumber("transferred", p.Transferred);
            json.WriteNumber("resumes", p.Resumes);
            json.WriteString("state", p.State.ToString().ToLowerInvariant());
            if (p.Message is not null) json.WriteString("message", p.Message);
            json.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }
}
