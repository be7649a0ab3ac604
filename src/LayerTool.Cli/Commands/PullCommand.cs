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

/// <summary>
/// The options the registry verbs share, declared once. Verbs that reach a registry on the side (squash, build)
/// take them without <c>--cache-dir</c> and <c>--progress</c>, which mean other things there: the blob cache is
/// then the default one and blob progress shows on a terminal only.
/// </summary>
/// <param name="forSideUse">Leave out <c>--cache-dir</c>, <c>--progress</c> and <c>--registry-mirror</c> unless <paramref name="withMirrors"/>.</param>
/// <param name="withMirrors">With <paramref name="forSideUse"/>: keep <c>--registry-mirror</c> and <c>--platform</c> (reads).</param>
internal sealed class RegistryCliSymbols(bool forSideUse = false, bool withMirrors = true)
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
        ArgumentNullException.ThrowIfNull(command);
        command.Add(Jobs);
        if (withMirrors)
        {
            command.Add(Platform);
            command.Add(Mirrors);
        }
        command.Add(Insecure);
        command.Add(Creds);
        if (!forSideUse)
        {
            command.Add(CacheDir);
            command.Add(Progress);
        }
        Progress.AcceptOnlyFromAmong("auto", "plain", "json", "none");
        Jobs.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() < 1) result.AddError("--jobs must be at least 1");
        });
    }

    public RegistryCliOptions Bind(ParseResult result, CliContext context, Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(context);
        var cacheDir = forSideUse ? null : result.GetValue(CacheDir);
        var reads = withMirrors || !forSideUse;
        return new RegistryCliOptions(
            result.GetValue(Jobs),
            reads ? result.GetValue(Platform) : null,
            reads ? result.GetValue(Mirrors) ?? [] : [],
            result.GetValue(Insecure) ?? [],
            result.GetValue(Creds),
            cacheDir is null ? DefaultCache(environment) : Path.GetFullPath(cacheDir, context.WorkingDirectory),
            DockerConfigPath(environment),
            forSideUse ? SideProgress(context) : result.GetValue(Progress) ?? "auto");
    }

    /// <summary>Blob progress of a verb that reaches a registry on the side: on a terminal only.</summary>
    private static string SideProgress(CliContext context) =>
        ReferenceEquals(context.Error, Console.Error) && !Console.IsErrorRedirected ? "auto" : "none";

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
            var name = reference.Tag is { } tag ? reference.WithTag(tag) : (ImageReference?)null;
            var loaded = await MissingLayersLoad.LoadAsync(new DockerImageEngine(connection), image, name, context.TempDirectory, cancellationToken).ConfigureAwait(false);
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
