using LayerTool.Image.Squash;
using System.IO.Compression;
using LayerTool.Image;
using LayerTool.Image.Formats;
using LayerTool.Registry.Blobs;

namespace LayerTool.Registry;

/// <summary>
/// Pushes an image: every blob the repository lacks is uploaded (skipped when <c>HEAD</c> finds it, mounted when
/// the blob cache saw it in another repository of the same registry), in parallel; the manifest goes last.
/// Layers whose stored blob is at hand (an OCI layout, a pulled image) are sent as stored, under the manifest
/// type they came with; uncompressed layers (a docker-archive, an engine's save) are sent as the blob the cache
/// knows for their diff ID, or gzip-compressed (into the cache) and sent under a Docker schema 2 manifest, as
/// <c>docker push</c> does.
/// </summary>
public sealed class ImagePusher(RegistryClient client)
{
    public async Task<PushResult> PushAsync(IImage image, ImageReference target, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(image);
        var sourceManifest = image switch
        {
            ArchiveImage { Manifest: { } m } => m,
            PulledImage pulled => pulled.Resolved.Manifest,
            _ => null,
        };
        // A composed image (a squash result) has no manifest of its own: OCI when a stored layer is OCI-typed (a zstd
        // layer exists only there), else Docker schema 2, as docker push makes.
        var oci = sourceManifest is not null
            ? sourceManifest.MediaType == MediaTypes.OciManifest
            : image.Layers.Any(l => l is IBlobLayer { Descriptor.MediaType: { } t } && t.StartsWith("application/vnd.oci.", StringComparison.Ordinal));
        var configDescriptor = new Descriptor(oci ? MediaTypes.OciConfig : MediaTypes.DockerConfig, image.Config.Digest, image.Config.Bytes.Length);
        if (sourceManifest is not null && sourceManifest.Config.Digest == image.Config.Digest)
        {
            configDescriptor = sourceManifest.Config;
        }

        var layers = new Descriptor[image.Layers.Count];
        var counts = new Counts();
        var jobs = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, client.Settings.Jobs), CancellationToken = cancellationToken };
        await Parallel.ForEachAsync(Enumerable.Range(0, image.Layers.Count + 1), jobs, async (i, ct) =>
        {
            if (i == image.Layers.Count)
            {
                var bytes = image.Config.Bytes;
                await SendAsync(target, configDescriptor, () => new MemoryStream(bytes.ToArray(), writable: false), counts, ct).ConfigureAwait(false);
                return;
            }

            layers[i] = await PushLayerAsync(image.Layers[i], i, image.Layers.Count, target, oci, counts, ct).ConfigureAwait(false);
        }).ConfigureAwait(false);

        var manifest = new ImageManifest(oci ? MediaTypes.OciManifest : MediaTypes.DockerManifest, configDescriptor, layers)
        {
            Annotations = oci ? sourceManifest?.Annotations : null,
        };
        var bytes = manifest.ToBytes();
        var digest = await client.PutManifestAsync(target, bytes, manifest.MediaType, cancellationToken).ConfigureAwait(false);
        return new PushResult(digest, manifest.MediaType, counts.Uploaded, counts.Existing, counts.Mounted, counts.Bytes);
    }

    private async Task<Descriptor> PushLayerAsync(ILayer layer, int index, int count, ImageReference target, bool oci, Counts counts, CancellationToken cancellationToken)
    {
        var what = $"layer {index + 1} of {count} ({layer.DiffId})";
        if (layer is IBlobLayer { Descriptor: { } stored } blobLayer && stored.Digest != layer.DiffId)
        {
            var descriptor = stored with { MediaType = LayerMediaType(stored.MediaType, oci) };
            descriptor = descriptor with { Annotations = null, Platform = null };
            await SendAsync(target, descriptor, () => blobLayer.OpenBlob(cancellationToken), counts, cancellationToken).ConfigureAwait(false);
            client.Cache.RecordDiffId(layer.DiffId, descriptor);
            return descriptor;
        }

        // An uncompressed layer: a blob the cache knows for this diff ID, if the registry has it or the cache does.
        var gzipType = oci ? MediaTypes.OciLayerGzip : MediaTypes.DockerLayerGzip;
        foreach (var known in client.Cache.BlobsOf(layer.DiffId))
        {
            var candidate = new Descriptor(gzipType, known.Digest, known.Size);
            if (await client.BlobExistsAsync(target, candidate, cancellationToken).ConfigureAwait(false))
            {
                counts.Add(existing: 1);
                client.Settings.Progress?.Report(new BlobProgress(candidate.Digest, candidate.Size, 0, candidate.Size, 0, BlobState.Exists));
                return candidate;
            }

            if (await TryMountAsync(target, candidate, counts, cancellationToken).ConfigureAwait(false))
            {
                return candidate;
            }

            if (client.Cache.TryGet(candidate, out var cachedPath))
            {
                await UploadAsync(target, candidate, () => OpenFile(cachedPath), counts, cancellationToken).ConfigureAwait(false);
                return candidate;
            }
        }

        var compressed = await CompressAsync(layer, what, gzipType, cancellationToken).ConfigureAwait(false);
        client.Cache.RecordDiffId(layer.DiffId, compressed);
        await SendAsync(target, compressed, () => OpenFile(client.Cache.PathOf(compressed.Digest)), counts, cancellationToken).ConfigureAwait(false);
        return compressed;
    }

    /// <summary>A stored layer's media type in the manifest's family (gzip and plain tars have one in each; others are kept).</summary>
    private static string LayerMediaType(string? stored, bool oci) => stored switch
    {
        null or "" or MediaTypes.DockerLayerGzip or MediaTypes.OciLayerGzip => oci ? MediaTypes.OciLayerGzip : MediaTypes.DockerLayerGzip,
        MediaTypes.DockerLayer or MediaTypes.OciLayer => oci ? MediaTypes.OciLayer : MediaTypes.DockerLayer,
        _ => stored,
    };

    private async Task SendAsync(ImageReference target, Descriptor blob, Func<Stream> open, Counts counts, CancellationToken cancellationToken)
    {
        if (await client.BlobExistsAsync(target, blob, cancellationToken).ConfigureAwait(false))
        {
            counts.Add(existing: 1);
            client.Settings.Progress?.Report(new BlobProgress(blob.Digest, blob.Size, 0, blob.Size, 0, BlobState.Exists));
            return;
        }

        if (await TryMountAsync(target, blob, counts, cancellationToken).ConfigureAwait(false))
        {
            return;
        }

        await UploadAsync(target, blob, open, counts, cancellationToken).ConfigureAwait(false);
    }

    private async Task<bool> TryMountAsync(ImageReference target, Descriptor blob, Counts counts, CancellationToken cancellationToken)
    {
        foreach (var from in client.Cache.SourcesIn(blob.Digest, target.Registry).Where(r => r != target.Repository))
        {
            if (await client.MountBlobAsync(target, blob, from, cancellationToken).ConfigureAwait(false))
            {
                counts.Add(mounted: 1);
                client.Cache.RecordSource(blob.Digest, target.Registry, target.Repository);
                client.Settings.Progress?.Report(new BlobProgress(blob.Digest, blob.Size, 0, blob.Size, 0, BlobState.Mounted, from));
                return true;
            }
        }

        return false;
    }

    private async Task UploadAsync(ImageReference target, Descriptor blob, Func<Stream> open, Counts counts, CancellationToken cancellationToken)
    {
        var progress = client.Settings.Progress;
        await client.UploadBlobAsync(target, blob, open,
            sent => progress?.Report(new BlobProgress(blob.Digest, blob.Size, sent, sent, 0, BlobState.Transferring)), cancellationToken).ConfigureAwait(false);
        progress?.Report(new BlobProgress(blob.Digest, blob.Size, blob.Size, blob.Size, 0, BlobState.Done));
        counts.Add(uploaded: 1, bytes: blob.Size);
        client.Cache.RecordSource(blob.Digest, target.Registry, target.Repository);
    }

    /// <summary>Gzips an uncompressed layer into the blob cache (hashing on the way); the diff ID is checked as it is read.</summary>
    private async Task<Descriptor> CompressAsync(ILayer layer, string what, string mediaType, CancellationToken cancellationToken)
    {
        var temp = Path.Combine(client.Cache.Root, "blobs", Digest.Sha256, $"compress-{Guid.NewGuid():N}.partial");
        Directory.CreateDirectory(Path.GetDirectoryName(temp)!);
        try
        {
            var hashing = new HashingWriteStream(new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous));
            await using (hashing.ConfigureAwait(false))
            {
                var tar = layer.Open(cancellationToken);
                await using (tar.ConfigureAwait(false))
                {
                    var gzip = new GZipStream(hashing, CompressionLevel.Fastest, leaveOpen: true);
                    await using (gzip.ConfigureAwait(false))
                    {
                        await tar.CopyToAsync(gzip, 1 << 17, cancellationToken).ConfigureAwait(false);
                    }
                }
            }

            var descriptor = new Descriptor(mediaType, hashing.Digest, hashing.Length);
            File.Move(temp, client.Cache.PathOf(descriptor.Digest), overwrite: true);
            return descriptor;
        }
        catch (ImageFormatException e)
        {
            throw new RegistryException($"{what}: {e.Message}", e);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    private static FileStream OpenFile(string path) =>
        new(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan | FileOptions.Asynchronous);

    private sealed class Counts
    {
        private int _uploaded;
        private int _existing;
        private int _mounted;
        private long _bytes;

        public int Uploaded => _uploaded;

        public int Existing => _existing;

        public int Mounted => _mounted;

        public long Bytes => Interlocked.Read(ref _bytes);

        public void Add(int uploaded = 0, int existing = 0, int mounted = 0, long bytes = 0)
        {
            Interlocked.Add(ref _uploaded, uploaded);
            Interlocked.Add(ref _existing, existing);
            Interlocked.Add(ref _mounted, mounted);
            Interlocked.Add(ref _bytes, bytes);
        }
    }

    /// <summary>Writes through to a file, hashing what passes.</summary>
    private sealed class HashingWriteStream(Stream inner) : Stream
    {
        private readonly System.Security.Cryptography.IncrementalHash _hash =
            System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);

        private long _length;
        private Digest? _digest;

        public Digest Digest => _digest ??= Digest.FromSha256Hash(_hash.GetHashAndReset());

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => _length;

        public override long Position { get => _length; set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            _hash.AppendData(buffer);
            _length += buffer.Length;
            inner.Write(buffer);
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            _hash.AppendData(buffer.Span);
            _length += buffer.Length;
            await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _digest ??= Digest.FromSha256Hash(_hash.GetHashAndReset());
                _hash.Dispose();
                inner.Dispose();
            }

            base.Dispose(disposing);
        }

        public override async ValueTask DisposeAsync()
        {
            _digest ??= Digest.FromSha256Hash(_hash.GetHashAndReset());
            _hash.Dispose();
            await inner.DisposeAsync().ConfigureAwait(false);
            await base.DisposeAsync().ConfigureAwait(false);
        }
    }
}
