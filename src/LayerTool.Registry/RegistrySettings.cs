using LayerTool.Image;
using LayerTool.Registry.Auth;

namespace LayerTool.Registry;

/// <summary>
/// A mirror tried before the origin registry, as dockerd's <c>registry-mirrors</c> (for docker.io) or a
/// <c>registries.conf</c> mirror (for any host).
/// </summary>
/// <param name="Registry">The registry it mirrors (e.g. <c>docker.io</c>, <c>localhost:5000</c>).</param>
/// <param name="Endpoint">The mirror's base URL; repositories are under its <c>/v2/</c> as on the origin.</param>
public sealed record RegistryMirror(string Registry, Uri Endpoint)
{
    /// <summary>
    /// Parses <c>URL</c> (a mirror of docker.io, as dockerd's <c>--registry-mirror</c>) or <c>HOST=URL</c>
    /// (a mirror of HOST).
    /// </summary>
    public static RegistryMirror Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var registry = ImageReference.DefaultRegistry;
        var url = value;
        var equals = value.IndexOf('=', StringComparison.Ordinal);
        if (equals > 0)
        {
            registry = value[..equals];
            url = value[(equals + 1)..];
            if (registry == "index.docker.io" || registry == "registry-1.docker.io")
            {
                registry = ImageReference.DefaultRegistry;
            }
        }

        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new RegistryException($"invalid registry mirror '{value}': expected URL or HOST=URL with an http:// or https:// URL");
        }

        if (!string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment))
        {
            throw new RegistryException($"invalid registry mirror '{value}': the URL may not have a query or fragment");
        }

        return new RegistryMirror(registry, uri);
    }
}

/// <summary>How the registry client connects, authenticates, retries and where it keeps blobs.</summary>
public sealed record RegistrySettings
{
    /// <summary>Where verified blobs are kept (<c>blobs/sha256/&lt;hex&gt;</c>), so a re-run fetches only what is missing.</summary>
    public required string CacheDirectory { get; init; }

    /// <summary>How many blobs are transferred at once.</summary>
    public int Jobs { get; init; } = 6;

    /// <summary>The platform chosen from a multi-platform index.</summary>
    public Platform Platform { get; init; } = RegistryPlatform.Default;

    /// <summary>Mirrors, tried in order before the origin for the registries they cover (pulls only).</summary>
    public IReadOnlyList<RegistryMirror> Mirrors { get; init; } = [];

    /// <summary>Hosts (<c>host[:port]</c>) that may be reached over plain HTTP besides the loopback ones.</summary>
    public IReadOnlyList<string> InsecureRegistries { get; init; } = [];

    /// <summary>Where credentials come from; anonymous when nothing is found.</summary>
    public ICredentialSource Credentials { get; init; } = NoCredentials.Instance;

    /// <summary>Attempts per request (and per blob, counting resumes) before giving up.</summary>
    public int MaxAttempts { get; init; } = 6;

    /// <summary>The first retry's delay; doubled each time (with jitter), capped by <see cref="MaxRetryDelay"/>.</summary>
    public TimeSpan RetryBaseDelay { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>The longest wait between attempts (also caps a registry's <c>Retry-After</c>).</summary>
    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>A blob download with no byte for this long is cut and resumed.</summary>
    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Push uploads in chunks of at least this many bytes (raised to the registry's
    /// <c>OCI-Chunk-Min-Length</c>); null uploads each blob in one request.</summary>
    public long? ChunkSize { get; init; }

    /// <summary>Told about every blob as it is transferred.</summary>
    public IProgress<BlobProgress>? Progress { get; init; }

    /// <summary>The HTTP handler (tests pass one of their own); a <see cref="SocketsHttpHandler"/> when null.</summary>
    public HttpMessageHandler? Handler { get; init; }

    /// <summary>The User-Agent header.</summary>
    public string UserAgent { get; init; } = "layertool";
}

/// <summary>What a blob transfer is doing.</summary>
public enum BlobState
{
    /// <summary>Already in the cache (pull) or in the registry (push): nothing transferred.</summary>
    Exists,

    /// <summary>Bytes are moving.</summary>
    Transferring,

    /// <summary>The connection was cut or the registry failed; the transfer is resumed or retried.</summary>
    Retrying,

    /// <summary>Mounted from another repository of the same registry (push).</summary>
    Mounted,

    /// <summary>Transferred and verified.</summary>
    Done,
}

/// <summary>Progress of one blob.</summary>
/// <param name="Digest">The blob.</param>
/// <param name="Size">Its size.</param>
/// <param name="Transferred">Bytes transferred so far in this run (resumed bytes are not counted twice).</param>
/// <param name="Offset">How far the blob is complete (including bytes from an earlier run).</param>
/// <param name="Resumes">How many times the transfer was resumed or restarted.</param>
/// <param name="State">What is happening.</param>
/// <param name="Message">Why it is retrying, where it came from.</param>
public sealed record BlobProgress(Digest Digest, long Size, long Transferred, long Offset, int Resumes, BlobState State, string? Message = null);

/// <summary>The platform of the machine, as a registry names it (linux is assumed: images are Linux images).</summary>
public static class RegistryPlatform
{
    /// <summary>linux/&lt;this machine's architecture&gt;.</summary>
    public static Platform Default { get; } = FromArchitecture(System.Runtime.InteropServices.RuntimeInformation.OSArchitecture);

    /// <summary>Parses <c>os/arch[/variant]</c>, e.g. <c>linux/arm64/v8</c>.</summary>
    public static Platform Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var parts = value.Split('/');
        if (parts.Length is < 2 or > 3 || parts.Any(string.IsNullOrWhiteSpace))
        {
            throw new RegistryException($"invalid platform '{value}': expected os/arch[/variant], e.g. linux/amd64");
        }

        return new Platform(parts[1].ToLowerInvariant(), parts[0].ToLowerInvariant()) { Variant = parts.Length == 3 ? parts[2].ToLowerInvariant() : null };
    }

    private static Platform FromArchitecture(System.Runtime.InteropServices.Architecture architecture) => architecture switch
    {
        System.Runtime.InteropServices.Architecture.Arm64 => new Platform("arm64", "linux"),
        System.Runtime.InteropServices.Architecture.Arm => new Platform("arm", "linux") { Variant = "v7" },
        System.Runtime.InteropServices.Architecture.X86 => new Platform("386", "linux"),
        System.Runtime.InteropServices.Architecture.S390x => new Platform("s390x", "linux"),
        System.Runtime.InteropServices.Architecture.Ppc64le => new Platform("ppc64le", "linux"),
        System.Runtime.InteropServices.Architecture.RiscV64 => new Platform("riscv64", "linux"),
        _ => Platform.LinuxAmd64,
    };
}
