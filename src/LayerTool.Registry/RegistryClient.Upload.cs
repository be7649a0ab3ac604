using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using LayerTool.Image;
using LayerTool.Registry.Http;

namespace LayerTool.Registry;

public sealed partial class RegistryClient
{
    /// <summary>Whether the repository has the blob (<c>HEAD</c>; 200 with the right size).</summary>
    public async Task<bool> BlobExistsAsync(ImageReference repository, Descriptor blob, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(blob);
        var endpoint = Origin(repository.Registry);
        var spec = new RequestSpec(HttpMethod.Head, endpoint.Api($"{repository.Repository}/blobs/{blob.Digest}")) { What = $"blob {blob.Digest}" };
        using var response = await Transport.SendAsync(endpoint, spec, [PushScope(repository)], cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return false;
        }

        if (!response.IsSuccessStatusCode)
        {
            throw await RegistryTransport.ErrorAsync(response, endpoint, $"check blob {blob.Digest} in {repository.Repository}", cancellationToken).ConfigureAwait(false);
        }

        return response.Content.Headers.ContentLength is null || response.Content.Headers.ContentLength == blob.Size;
    }

    /// <summary>
    /// Mounts the blob from another repository of the same registry (<c>POST ?mount=&amp;from=</c>); true when the
    /// registry did (201), false when it answered with an upload session instead (which is cancelled).
    /// </summary>
    public async Task<bool> MountBlobAsync(ImageReference repository, Descriptor blob, string fromRepository, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(blob);
        var endpoint = Origin(repository.Registry);
        var uri = endpoint.Api($"{repository.Repository}/blobs/uploads/?mount={Uri.EscapeDataString(blob.Digest.ToString())}&from={Uri.EscapeDataString(fromRepository)}");
        var spec = new RequestSpec(HttpMethod.Post, uri) { What = $"mount of {blob.Digest} from {fromRepository}", Content = () => EmptyContent() };
        using var response = await Transport.SendAsync(endpoint, spec, [PushScope(repository), $"repository:{fromRepository}:pull"], cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.Created)
        {
            return true;
        }

        if (response.StatusCode == HttpStatusCode.Accepted && response.Headers.Location is { } location)
        {
            // An upload session we will not use: end it (best effort).
            var session = new RequestSpec(HttpMethod.Delete, Absolute(endpoint, location)) { Attempts = 1 };
            try
            {
                using var _ = await Transport.SendAsync(endpoint, session, [PushScope(repository)], cancellationToken).ConfigureAwait(false);
            }
            catch (RegistryException)
            {
            }
        }

        return false;
    }

    /// <summary>
    /// Uploads a blob: one <c>PUT</c> (monolithic), or <c>PATCH</c> chunks of at least <see cref="RegistrySettings.ChunkSize"/>
    /// (raised to the registry's <c>OCI-Chunk-Min-Length</c>) then the closing <c>PUT</c>. A failed upload starts a new
    /// session, up to <see cref="RegistrySettings.MaxAttempts"/> times. <paramref name="open"/> opens the bytes afresh.
    /// </summary>
    public async Task UploadBlobAsync(ImageReference repository, Descriptor blob, Func<Stream> open, Action<long>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(blob);
        ArgumentNullException.ThrowIfNull(open);
        var endpoint = Origin(repository.Registry);
        var what = $"upload of blob {blob.Digest} to {repository.Repository}";
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await UploadOnceAsync(endpoint, repository, blob, open, progress, what, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (attempt < Settings.MaxAttempts && !cancellationToken.IsCancellationRequested
                                      && (RegistryTransport.IsTransient(e, cancellationToken)
                                          || (e is RegistryException { StatusCode: { } status } && RegistryTransport.IsTransientStatus((HttpStatusCode)status))))
            {
                Settings.Progress?.Report(new BlobProgress(blob.Digest, blob.Size, 0, 0, attempt, BlobState.Retrying, RegistryTransport.Cause(e)));
                await Transport.DelayAsync(attempt, null, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task UploadOnceAsync(RegistryEndpoint endpoint, ImageReference repository, Descriptor blob, Func<Stream> open, Action<long>? progress,
        string what, CancellationToken cancellationToken)
    {
        var start = new RequestSpec(HttpMethod.Post, endpoint.Api($"{repository.Repository}/blobs/uploads/")) { What = what, Content = () => EmptyContent() };
        Uri location;
        long minChunk;
        using (var started = await Transport.SendAsync(endpoint, start, [PushScope(repository)], cancellationToken).ConfigureAwait(false))
        {
            if (started.StatusCode != HttpStatusCode.Accepted || started.Headers.Location is null)
            {
                throw started.IsSuccessStatusCode
                    ? new RegistryException($"{endpoint}: {what}: the registry answered {(int)started.StatusCode} without an upload location")
                    : await RegistryTransport.ErrorAsync(started, endpoint, what, cancellationToken).ConfigureAwait(false);
            }

            location = Absolute(endpoint, started.Headers.Location);
            minChunk = started.Headers.TryGetValues("OCI-Chunk-Min-Length", out var values) ? HeaderNumbers.Long(values.FirstOrDefault()) ?? 0 : 0;
        }

        var stream = open();
        await using (stream.ConfigureAwait(false))
        {
            if (Settings.ChunkSize is { } chunkSize && blob.Size > 0)
            {
                var chunk = Math.Max(chunkSize, minChunk);
                long offset = 0;
                var buffer = new byte[(int)Math.Min(chunk, 64L << 20)];
                while (offset < blob.Size)
                {
                    var length = (int)Math.Min(buffer.Length, blob.Size - offset);
                    await stream.ReadExactlyAsync(buffer.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
                    var from = offset;
                    var body = buffer;
                    var patch = new RequestSpec(HttpMethod.Patch, location)
                    {
                        What = what,
                        Attempts = 1,
                        Content = () =>
                        {
                            var content = new ByteArrayContent(body, 0, length);
                            content.Headers.ContentType = OctetStream;
                            content.Headers.TryAddWithoutValidation("Content-Range", string.Create(CultureInfo.InvariantCulture, $"{from}-{from + length - 1}"));
                            return content;
                        },
                    };
                    using var answer = await Transport.SendAsync(endpoint, patch, [PushScope(repository)], cancellationToken).ConfigureAwait(false);
                    if (answer.StatusCode != HttpStatusCode.Accepted)
                    {
                        throw await RegistryTransport.ErrorAsync(answer, endpoint, what + $" (chunk at {from})", cancellationToken).ConfigureAwait(false);
                    }

                    if (answer.Headers.Location is { } next)
                    {
                        location = Absolute(endpoint, next);
                    }

                    offset += length;
                    progress?.Invoke(offset);
                }

                await PutAsync(endpoint, repository, blob, location, null, what, cancellationToken).ConfigureAwait(false);
                return;
            }

            await PutAsync(endpoint, repository, blob, location, new ProgressReadStream(stream, progress), what, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task PutAsync(RegistryEndpoint endpoint, ImageReference repository, Descriptor blob, Uri location, Stream? body, string what,
        CancellationToken cancellationToken)
    {
        var separator = string.IsNullOrEmpty(location.Query) ? "?" : "&";
        var put = new RequestSpec(HttpMethod.Put, new Uri(location.AbsoluteUri + separator + "digest=" + Uri.EscapeDataString(blob.Digest.ToString())))
        {
            What = what,
            Attempts = 1,
            Content = () =>
            {
                HttpContent content = body is null ? new ByteArrayContent([]) : new StreamContent(body, 1 << 17);
                content.Headers.ContentType = OctetStream;
                content.Headers.ContentLength = body is null ? 0 : blob.Size;
                return content;
            },
        };
        using var response = await Transport.SendAsync(endpoint, put, [PushScope(repository)], cancellationToken).ConfigureAwait(false);
        if (response.StatusCode is not (HttpStatusCode.Created or HttpStatusCode.NoContent or HttpStatusCode.OK))
        {
            throw await RegistryTransport.ErrorAsync(response, endpoint, what, cancellationToken).ConfigureAwait(false);
        }

        if (ContentDigest(response) is { } stored && stored != blob.Digest)
        {
            throw new RegistryException($"{endpoint}: {what}: the registry stored {stored}, not {blob.Digest}");
        }
    }

    /// <summary>Puts a manifest under a tag or digest; returns the digest the registry reports (checked against the bytes).</summary>
    public async Task<Digest> PutManifestAsync(ImageReference reference, byte[] manifest, string mediaType, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        var endpoint = Origin(reference.Registry);
        var digest = Digest.Compute(manifest);
        var target = reference.Tag ?? digest.ToString();
        var what = $"manifest {reference.Repository}:{target}";
        var spec = new RequestSpec(HttpMethod.Put, endpoint.Api($"{reference.Repository}/manifests/{target}"))
        {
            What = what,
            Content = () =>
            {
                var content = new ByteArrayContent(manifest);
                content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
                return content;
            },
        };
        using var response = await Transport.SendAsync(endpoint, spec, [PushScope(reference)], cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw await RegistryTransport.ErrorAsync(response, endpoint, "put " + what, cancellationToken).ConfigureAwait(false);
        }

        if (ContentDigest(response) is { } stored && stored != digest)
        {
            throw new RegistryException($"{endpoint}: put {what}: the registry reports {stored}, but the manifest's digest is {digest}");
        }

        return digest;
    }

    private static Uri Absolute(RegistryEndpoint endpoint, Uri location) => location.IsAbsoluteUri ? location : new Uri(endpoint.BaseUri, location);

    private static ByteArrayContent EmptyContent()
    {
        var content = new ByteArrayContent([]);
        content.Headers.ContentLength = 0;
        return content;
    }

    /// <summary>Tells how many bytes were read through it.</summary>
    private sealed class ProgressReadStream(Stream inner, Action<long>? progress) : LayerTool.Image.ReadOnlyStream
    {
        private long _read;

        public override int Read(Span<byte> buffer)
        {
            var n = inner.Read(buffer);
            Count(n);
            return n;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            Count(n);
            return n;
        }

        private void Count(int n)
        {
            _read += n;
            progress?.Invoke(_read);
        }
    }
}
