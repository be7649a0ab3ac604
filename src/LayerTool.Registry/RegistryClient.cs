using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using LayerTool.Image;
using LayerTool.Registry.Auth;
using LayerTool.Registry.Blobs;
using LayerTool.Registry.Http;

namespace LayerTool.Registry;

/// <summary>A manifest or index as the registry served it: the exact bytes, their digest and media type.</summary>
public sealed record FetchedManifest(byte[] Bytes, string MediaType, Digest Digest)
{
    public Descriptor Descriptor => new(MediaType, Digest, Bytes.Length);
}

/// <summary>
/// The Registry HTTP API v2 / OCI distribution client: manifests (OCI and Docker schema 2, indexes and
/// manifest lists; schema 1 refused), blobs downloaded into a <see cref="BlobCache"/> (verified while
/// streaming, resumed with closed ranges, renamed into place only when verified), uploads, mounts. Mirrors
/// are tried in order before the origin for reads, each failure falling through to the next.
/// </summary>
public sealed partial class RegistryClient : IDisposable
{
    /// <summary>The manifest types asked for (schema 1 too, so that it can be refused by name instead of a 404).</summary>
    internal static readonly string[] ManifestAccept =
    [
        MediaTypes.OciManifest, MediaTypes.OciIndex, MediaTypes.DockerManifest, MediaTypes.DockerManifestList,
        DockerSchema1Signed, DockerSchema1,
    ];

    private const string DockerSchema1 = "application/vnd.docker.distribution.manifest.v1+json";
    private const string DockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws";
    private const int MaxManifestSize = 4 << 20;

    private readonly RegistryTransport _transport;
    private readonly HashSet<string> _downMirrors = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    public RegistryClient(RegistrySettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        Settings = settings;
        Cache = new BlobCache(settings.CacheDirectory);
        _transport = new RegistryTransport(settings);
        foreach (var mirror in settings.Mirrors)
        {
            if (mirror.Endpoint.Scheme == Uri.UriSchemeHttp && !RegistryHosts.AllowsPlainHttp(mirror.Endpoint.Authority, settings.InsecureRegistries))
            {
                throw new RegistryException(
                    $"registry mirror {mirror.Endpoint} uses plain HTTP: allowed only for localhost or a host named with --insecure-registry");
            }
        }
    }

    public RegistrySettings Settings { get; }

    public BlobCache Cache { get; }

    internal RegistryTransport Transport => _transport;

    public void Dispose() => _transport.Dispose();

    /// <summary>The origin endpoint of a registry: HTTPS, or plain HTTP for loopback and insecure hosts.</summary>
    internal RegistryEndpoint Origin(string registry)
    {
        var host = registry == ImageReference.DefaultRegistry ? "registry-1.docker.io" : registry;
        var scheme = RegistryHosts.AllowsPlainHttp(registry, Settings.InsecureRegistries) ? "http" : "https";
        return new RegistryEndpoint(registry, new Uri($"{scheme}://{host}/"), IsMirror: false);
    }

    /// <summary>Where reads go, in order: the registry's mirrors (not known to be down), then the origin.</summary>
    internal IReadOnlyList<RegistryEndpoint> ReadEndpoints(string registry)
    {
        var list = new List<RegistryEndpoint>();
        foreach (var mirror in Settings.Mirrors.Where(m => string.Equals(m.Registry, registry, StringComparison.OrdinalIgnoreCase)))
        {
            var uri = mirror.Endpoint.AbsoluteUri.EndsWith('/') ? mirror.Endpoint : new Uri(mirror.Endpoint.AbsoluteUri + "/");
            lock (_gate)
            {
                if (_downMirrors.Contains(uri.AbsoluteUri))
                {
                    continue;
                }
            }

            list.Add(new RegistryEndpoint(registry, uri, IsMirror: true));
        }

        list.Add(Origin(registry));
        return list;
    }

    internal static string PullScope(ImageReference reference) => $"repository:{reference.Repository}:pull";

    internal static string PushScope(ImageReference reference) => $"repository:{reference.Repository}:pull,push";

    /// <summary>
    /// Runs <paramref name="read"/> against each read endpoint in turn until one succeeds; a mirror's failure
    /// (an error answer, unreachable, bad bytes) falls through to the next, the origin's is thrown.
    /// </summary>
    internal async Task<T> ReadAsync<T>(string registry, Func<RegistryEndpoint, Task<T>> read, CancellationToken cancellationToken)
    {
        var endpoints = ReadEndpoints(registry);
        var failures = new List<string>();
        foreach (var endpoint in endpoints)
        {
            try
            {
                return await read(endpoint).ConfigureAwait(false);
            }
            catch (Exception e) when (endpoint.IsMirror && !cancellationToken.IsCancellationRequested
                                      && e is RegistryException or ImageFormatException or HttpRequestException or IOException)
            {
                failures.Add($"{endpoint}: {e.Message}");
                if (e is RegistryException { StatusCode: null } && e.InnerException is not null)
                {
                    lock (_gate)
                    {
                        _downMirrors.Add(endpoint.BaseUri.AbsoluteUri);
                    }
                }

                MirrorFailed?.Invoke(endpoint.BaseUri, e.Message);
            }
        }

        throw new InvalidOperationException("unreachable: the origin is always the last endpoint");
    }

    /// <summary>Told when a mirror failed and the next endpoint is tried (mirror URL, why).</summary>
    public event Action<Uri, string>? MirrorFailed;

    /// <summary>
    /// The manifest or index <paramref name="reference"/> names (by digest when it has one: a digest wins over a
    /// tag), digest-checked: against the reference's digest, else against <c>Docker-Content-Digest</c> when sent.
    /// </summary>
    public Task<FetchedManifest> GetManifestAsync(ImageReference reference, CancellationToken cancellationToken) =>
        GetManifestAsync(reference, reference.Digest?.ToString() ?? reference.Tag ?? ImageReference.DefaultTag, cancellationToken);

    private Task<FetchedManifest> GetManifestAsync(ImageReference reference, string tagOrDigest, CancellationToken cancellationToken) =>
        ReadAsync(reference.Registry, endpoint => GetManifestFromAsync(endpoint, reference, tagOrDigest, cancellationToken), cancellationToken);

    private async Task<FetchedManifest> GetManifestFromAsync(RegistryEndpoint endpoint, ImageReference reference, string tagOrDigest, CancellationToken cancellationToken)
    {
        var what = $"manifest {reference.Repository}:{tagOrDigest}";
        var spec = new RequestSpec(HttpMethod.Get, endpoint.Api($"{reference.Repository}/manifests/{tagOrDigest}"))
        {
            Accept = ManifestAccept,
            What = what,
            Attempts = endpoint.IsMirror ? 2 : null,
        };
        using var response = await _transport.SendAsync(endpoint, spec, [PullScope(reference)], cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            var error = await RegistryTransport.ErrorAsync(response, endpoint, "read " + what, cancellationToken).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                throw new RegistryException($"{reference.FamiliarName}:{tagOrDigest}: manifest unknown: no such image in {endpoint}"
                                            + (error.ErrorCode is { } code ? $" ({code})" : ""), error)
                {
                    StatusCode = 404,
                    ErrorCode = error.ErrorCode,
                };
            }

            throw error;
        }

        if (response.Content.Headers.ContentLength > MaxManifestSize)
        {
            throw new RegistryException($"{endpoint}: {what} is {response.Content.Headers.ContentLength} bytes, more than the {MaxManifestSize} a manifest may have");
        }

        var bytes = await ReadCappedAsync(response.Content, MaxManifestSize, what, cancellationToken).ConfigureAwait(false);
        var digest = Digest.Compute(bytes);
        if (Digest.TryParse(tagOrDigest, out var wanted))
        {
            if (wanted.Algorithm != Digest.Sha256)
            {
                using var hash = IncrementalHash.CreateHash(wanted.Algorithm == "sha512" ? HashAlgorithmName.SHA512 : HashAlgorithmName.SHA384);
                hash.AppendData(bytes);
                var hex = Convert.ToHexStringLower(hash.GetHashAndReset());
                if (hex != wanted.Hex)
                {
                    throw new RegistryException($"{endpoint}: {what}: digest mismatch: the bytes served are {wanted.Algorithm}:{hex}");
                }

                digest = wanted;
            }
            else if (digest != wanted)
            {
                throw new RegistryException($"{endpoint}: {what}: digest mismatch: the bytes served are {digest}");
            }
        }
        else if (response.Headers.TryGetValues("Docker-Content-Digest", out var headerValues)
                 && Digest.TryParse(headerValues.FirstOrDefault(), out var announced) && announced.Algorithm == Digest.Sha256 && announced != digest)
        {
            throw new RegistryException($"{endpoint}: {what}: digest mismatch: Docker-Content-Digest says {announced}, the bytes are {digest}");
        }

        var mediaType = MediaTypeOf(bytes, response.Content.Headers.ContentType?.MediaType, endpoint, what);
        return new FetchedManifest(bytes, mediaType, digest);
    }

    private static string MediaTypeOf(byte[] bytes, string? contentType, RegistryEndpoint endpoint, string what)
    {
        System.Text.Json.Nodes.JsonObject? json;
        try
        {
            json = System.Text.Json.Nodes.JsonNode.Parse(bytes) as System.Text.Json.Nodes.JsonObject;
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new RegistryException($"{endpoint}: {what} is not JSON: {e.Message}", e);
        }

        if (json is null)
        {
            throw new RegistryException($"{endpoint}: {what} is not a JSON object");
        }

        var schema = json["schemaVersion"] is System.Text.Json.Nodes.JsonValue v && v.TryGetValue<int>(out var s) ? s : 0;
        if (schema == 1 || contentType is DockerSchema1 or DockerSchema1Signed)
        {
            throw new RegistryException(
                $"{endpoint}: {what} is a Docker image manifest schema 1, which is deprecated and not supported; "
                + "push the image again with a current Docker (schema 2) or convert it (e.g. skopeo copy --format v2s2)");
        }

        var declared = json["mediaType"] is System.Text.Json.Nodes.JsonValue m && m.TryGetValue<string>(out var mt) ? mt : null;
        var mediaType = declared ?? contentType;
        if (mediaType is null or "application/json" or "text/plain" or "application/octet-stream")
        {
            mediaType = json["manifests"] is not null ? MediaTypes.OciIndex : MediaTypes.OciManifest;
        }

        if (!MediaTypes.IsIndex(mediaType) && !MediaTypes.IsManifest(mediaType))
        {
            throw new RegistryException($"{endpoint}: {what} has media type '{mediaType}', which is neither an image manifest nor an index");
        }

        return mediaType;
    }

    private static async Task<byte[]> ReadCappedAsync(HttpContent content, int cap, string what, CancellationToken cancellationToken)
    {
        var stream = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            using var buffer = new MemoryStream();
            var chunk = new byte[81920];
            int n;
            while ((n = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
            {
                buffer.Write(chunk, 0, n);
                if (buffer.Length > cap)
                {
                    throw new RegistryException($"{what}: more than the {cap} bytes a manifest may have");
                }
            }

            return buffer.ToArray();
        }
    }

    /// <summary>
    /// Resolves <paramref name="reference"/> to one image manifest: an index or manifest list is narrowed to
    /// <see cref="RegistrySettings.Platform"/>. Returns the manifest, its bytes, and the index it came from.
    /// </summary>
    public async Task<ResolvedManifest> ResolveAsync(ImageReference reference, CancellationToken cancellationToken)
    {
        var top = await GetManifestAsync(reference, cancellationToken).ConfigureAwait(false);
        if (!MediaTypes.IsIndex(top.MediaType))
        {
            return new ResolvedManifest(top, ParseManifest(top, reference), null);
        }

        var index = ImageIndex.Parse(top.Bytes, $"{reference}: image index {top.Digest}");
        var chosen = ChoosePlatform(index, Settings.Platform, reference, top.Digest);
        var manifest = await GetManifestAsync(reference, chosen.Digest.ToString(), cancellationToken).ConfigureAwait(false);
        if (manifest.Digest != chosen.Digest)
        {
            throw new RegistryException($"{reference}: the index lists {chosen.Digest} but the registry served {manifest.Digest}");
        }

        if (MediaTypes.IsIndex(manifest.MediaType))
        {
            throw new RegistryException($"{reference}: the index's entry for {Settings.Platform} is another index ({chosen.Digest}); nested indexes are not followed");
        }

        return new ResolvedManifest(manifest, ParseManifest(manifest, reference), top);
    }

    private static ImageManifest ParseManifest(FetchedManifest fetched, ImageReference reference)
    {
        try
        {
            return ImageManifest.Parse(fetched.Bytes, $"{reference.FamiliarString}: manifest {fetched.Digest}");
        }
        catch (ImageFormatException e)
        {
            throw new RegistryException(e.Message, e);
        }
    }

    /// <summary>The index entry for <paramref name="platform"/> (attestations and unknown platforms skipped).</summary>
    public static Descriptor ChoosePlatform(ImageIndex index, Platform platform, ImageReference reference, Digest indexDigest)
    {
        ArgumentNullException.ThrowIfNull(index);
        ArgumentNullException.ThrowIfNull(platform);
        var candidates = index.Manifests
            .Where(m => string.IsNullOrEmpty(m.MediaType) || MediaTypes.IsManifest(m.MediaType) || MediaTypes.IsIndex(m.MediaType))
            .Where(m => m.Annotation("vnd.docker.reference.type") != "attestation-manifest")
            .Where(m => m.Platform is null || m.Platform.Os != "unknown")
            .ToList();
        var exact = candidates.FirstOrDefault(m => m.Platform is { } p && p.Satisfies(platform) && (platform.Variant is not null || p.Variant is null || IsDefaultVariant(p)));
        var loose = candidates.FirstOrDefault(m => m.Platform?.Satisfies(platform) == true);
        if ((exact ?? loose) is { } found)
        {
            return found;
        }

        var available = string.Join(", ", candidates.Select(m => m.Platform?.ToString() ?? "(no platform)"));
        throw new RegistryException(candidates.Count == 0
            ? $"{reference.FamiliarString}: image index {indexDigest} lists no image"
            : $"{reference.FamiliarString}: no image for {platform} in the index {indexDigest} (it has: {available}); choose one with --platform");
    }

    private static bool IsDefaultVariant(Platform p) => (p.Architecture, p.Variant) is ("arm64", "v8") or ("arm", "v7") or ("amd64", "v1");

    /// <summary>Reads the response's <c>Docker-Content-Digest</c>.</summary>
    internal static Digest? ContentDigest(HttpResponseMessage response) =>
        response.Headers.TryGetValues("Docker-Content-Digest", out var values) && Digest.TryParse(values.FirstOrDefault(), out var d) ? d : null;

    internal static MediaTypeHeaderValue OctetStream { get; } = new("application/octet-stream");
}

/// <summary>One image's manifest, resolved from a reference (through an index when there was one).</summary>
public sealed record ResolvedManifest(FetchedManifest Fetched, ImageManifest Manifest, FetchedManifest? Index);
