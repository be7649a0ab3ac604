using LayerTool.Image;
using LayerTool.Image.Formats;
using LayerTool.Registry.Http;

namespace LayerTool.Registry;

public sealed partial class RegistryClient
{
    /// <summary>
    /// Opens a blob as a stream straight from the registry (mirrors first), nothing written to the blob cache: for a
    /// reader that looks at the bytes once (a rebase reading a layer's tar headers). The bytes are checked against the
    /// digest and size when the stream is read to its end. A connection that fails to open is retried as any request;
    /// one cut mid-body is not resumed (the reader fails and may run again). HTTP gives no way to skip part of a gzip
    /// stream, so a reader that skips file bodies still receives them.
    /// </summary>
    public async Task<Stream> OpenBlobStreamAsync(ImageReference repository, Descriptor blob, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(blob);
        return await ReadAsync(repository.Registry, async endpoint =>
        {
            var what = $"blob {blob.Digest} of {repository.FamiliarName}";
            var spec = new RequestSpec(HttpMethod.Get, endpoint.Api($"{repository.Repository}/blobs/{blob.Digest}"))
            {
                What = what,
                Attempts = endpoint.IsMirror ? 2 : null,
            };
            var response = await Transport.SendAsync(endpoint, spec, [PullScope(repository)], cancellationToken).ConfigureAwait(false);
            try
            {
                if (!response.IsSuccessStatusCode)
                {
                    throw await RegistryTransport.ErrorAsync(response, endpoint, "download " + what, cancellationToken).ConfigureAwait(false);
                }

                if (response.Content.Headers.ContentLength is { } length && length != blob.Size)
                {
                    throw new RegistryException($"{endpoint}: {what}: the registry sends {length} bytes but the blob is {blob.Size} bytes");
                }

                var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
                Stream owned = new ResponseStream(response, body);
                return (Stream)new VerifyingStream(owned, blob.Digest, blob.Size, $"{endpoint}: {what}");
            }
            catch
            {
                response.Dispose();
                throw;
            }
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A response body that disposes its response with it.</summary>
    private sealed class ResponseStream(HttpResponseMessage response, Stream body) : ReadOnlyStream
    {
        public override int Read(Span<byte> buffer) => body.Read(buffer);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => body.ReadAsync(buffer, cancellationToken);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                body.Dispose();
                response.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
