using LayerTool.Image;
using LayerTool.Image.Formats;
using LayerTool.Registry.Blobs;

namespace LayerTool.Registry;

/// <summary>
/// Pulls an image into the blob cache: the manifest (narrowed to the platform), the config, then the layers
/// through a pool of <see cref="RegistrySettings.Jobs"/> workers, largest first. Every blob is verified before it
/// is kept; a layer that fails is retried alone (see <see cref="RegistryClient.FetchBlobAsync"/>), and blobs
/// already in the cache are not fetched again.
/// </summary>
public sealed class ImagePuller(RegistryClient client)
{
    /// <summary>Pulls <paramref name="reference"/>; only the layers <paramref name="wantLayer"/> accepts (index, count) when given.</summary>
    public async Task<PulledImage> PullAsync(ImageReference reference, Func<int, int, bool>? wantLayer, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        var resolved = await client.ResolveAsync(reference, cancellationToken).ConfigureAwait(false);
        var manifest = resolved.Manifest;
        var where = $"{reference.FamiliarString}";
        var configPath = await client.FetchBlobAsync(reference, manifest.Config, cancellationToken).ConfigureAwait(false);
        ImageConfig config;
        try
        {
            config = ImageConfig.Parse(await File.ReadAllBytesAsync(configPath, cancellationToken).ConfigureAwait(false), $"{where}: config {manifest.Config.Digest}");
        }
        catch (ImageFormatException e)
        {
            throw new RegistryException(e.Message, e);
        }

        var layerDescriptors = manifest.Layers;
        if (layerDescriptors.Count != config.DiffIds.Count)
        {
            throw new RegistryException($"{where}: the manifest lists {layerDescriptors.Count} layers but the config's rootfs.diff_ids has {config.DiffIds.Count}");
        }

        foreach (var layer in layerDescriptors)
        {
            if (!string.IsNullOrEmpty(layer.MediaType) && !MediaTypes.IsLayer(layer.MediaType))
            {
                throw new RegistryException($"{where}: blob {layer.Digest} has media type '{layer.MediaType}', which is not an image layer (an artifact, not an image?)");
            }
        }

        var count = layerDescriptors.Count;
        var wanted = Enumerable.Range(0, count).Where(i => wantLayer?.Invoke(i, count) ?? true).ToList();
        var paths = new string?[count];
        await Parallel.ForEachAsync(
            wanted.OrderByDescending(i => layerDescriptors[i].Size),
            new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, client.Settings.Jobs), CancellationToken = cancellationToken },
            async (i, ct) => paths[i] = await client.FetchBlobAsync(reference, layerDescriptors[i], ct).ConfigureAwait(false)).ConfigureAwait(false);

        for (var i = 0; i < count; i++)
        {
            client.Cache.RecordDiffId(config.DiffIds[i], layerDescriptors[i]);
        }

        var layers = new List<ILayer>(count);
        for (var i = 0; i < count; i++)
        {
            var descriptor = layerDescriptors[i];
            layers.Add(paths[i] is { } path
                ? new CachedLayer(path, descriptor, config.DiffIds[i], $"{where}: layer {i + 1} of {count}")
                : new DescribedLayer(config.DiffIds[i], descriptor));
        }

        return new PulledImage(reference, resolved, config, configPath, layers);
    }

    /// <summary>
    /// Writes a pulled image as an OCI image layout directory that keeps the registry's manifest byte for byte
    /// (so its digest stays the one the registry gave): <c>oci-layout</c>, <c>index.json</c> naming it with the
    /// tag, and every blob copied from the cache. Built beside <paramref name="directory"/> and renamed into place.
    /// </summary>
    public static async Task<Descriptor> WriteOciLayoutAsync(PulledImage image, string directory, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(directory);
        var full = Path.GetFullPath(directory);
        if (Directory.Exists(full) && Directory.EnumerateFileSystemEntries(full).Any())
        {
            throw new RegistryException($"{directory}: the directory exists and is not empty");
        }

        if (File.Exists(full))
        {
            throw new RegistryException($"{directory}: a file is in the way (an OCI layout is a directory)");
        }

        var parent = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(parent))
        {
            throw new RegistryException($"{directory}: the directory '{parent}' does not exist");
        }

        var temp = Path.Combine(parent, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        try
        {
            var blobs = Path.Combine(temp, "blobs", Digest.Sha256);
            Directory.CreateDirectory(blobs);
            async Task CopyAsync(string from, Digest digest)
            {
                var target = Path.Combine(temp, "blobs", digest.Algorithm, digest.Hex);
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                if (!File.Exists(target))
                {
                    var input = new FileStream(from, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan | FileOptions.Asynchronous);
                    await using (input.ConfigureAwait(false))
                    {
                        var output = new FileStream(target, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
                        await using (output.ConfigureAwait(false))
                        {
                            await input.CopyToAsync(output, 1 << 17, cancellationToken).ConfigureAwait(false);
                        }
                    }
                }
            }

            foreach (var layer in image.Layers)
            {
                if (layer is not CachedLayer cached)
                {
                    throw new RegistryException($"{image.Reference.FamiliarString}: layer {layer.DiffId} was not pulled");
                }

                await CopyAsync(cached.BlobPath, cached.Descriptor.Digest).ConfigureAwait(false);
            }

            await CopyAsync(image.ConfigPath, image.Resolved.Manifest.Config.Digest).ConfigureAwait(false);
            var manifest = image.Resolved.Fetched;
            await File.WriteAllBytesAsync(Path.Combine(temp, "blobs", manifest.Digest.Algorithm, manifest.Digest.Hex), manifest.Bytes, cancellationToken).ConfigureAwait(false);
            var annotations = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["io.containerd.image.name"] = image.Reference.ToString(),
            };
            if (image.Reference.Tag is { } tag)
            {
                annotations["org.opencontainers.image.ref.name"] = tag;
            }

            var platform = image.Config.Architecture is { } arch && image.Config.Os is { } os ? new Platform(arch, os) { Variant = image.Config.Variant } : null;
            var descriptor = manifest.Descriptor with { Annotations = annotations, Platform = platform };
            var index = new ImageIndex([descriptor]) { MediaType = MediaTypes.OciIndex };
            await File.WriteAllBytesAsync(Path.Combine(temp, "index.json"), index.ToBytes(), cancellationToken).ConfigureAwait(false);
            await File.WriteAllTextAsync(Path.Combine(temp, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}", cancellationToken).ConfigureAwait(false);
            if (Directory.Exists(full))
            {
                Directory.Delete(full);
            }

            Directory.Move(temp, full);
            return manifest.Descriptor;
        }
        catch
        {
            if (Directory.Exists(temp))
            {
                Directory.Delete(temp, recursive: true);
            }

            throw;
        }
    }

    /// <summary>Writes a pulled image as a docker-archive (uncompressed layer tars) or an OCI layout tar, through LayerTool.Image's writer.</summary>
    public static Task<ImageWriteResult> WriteArchiveAsync(PulledImage image, string path, ImageArchiveFormat format, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(image);
        var tags = image.Reference.Tag is not null ? new[] { image.Reference.WithTag(image.Reference.Tag) } : [];
        return ImageArchiveWriter.WriteAsync(path, image, new ImageWriteOptions { Format = format, Tags = tags }, cancellationToken);
    }
}
