using LayerTool.Image;
using LayerTool.Image.Formats;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Index;
using LayerTool.Image.Layers.Tar;
using LayerTool.Image.Rebase;
using LayerTool.Image.Squash;
using LayerTool.Registry.Blobs;

namespace LayerTool.Registry.Rebase;

/// <summary>One rebase in a registry.</summary>
/// <param name="Image">The image to move (a tag or a digest).</param>
/// <param name="Onto">The new base.</param>
/// <param name="From">The old base; null to find it from the image's base annotations or labels.</param>
/// <param name="Target">Where the result's manifest goes; null: the image's own tag (or, for an image named by digest, its repository by digest).</param>
/// <param name="Strict">Push nothing when there is a conflict.</param>
/// <param name="TakeBaseConfig">The <c>--take-base-config</c> keys.</param>
/// <param name="Names">How the report names the image and the bases (as the user wrote them).</param>
public sealed record RegistryRebaseRequest(ImageReference Image, ImageReference Onto, ImageReference? From, ImageReference? Target, bool Strict,
    IReadOnlyList<string> TakeBaseConfig, RegistryRebaseNames Names);

/// <summary>The image and the bases as the user named them.</summary>
public sealed record RegistryRebaseNames(string Image, string Onto, string? From);

/// <summary>Where a registry rebase keeps what it learns (shared with the engine rebase and squash).</summary>
/// <param name="IndexCacheDirectory">The base-index cache (indexes of a base's merged layers, by image ID = config digest);
/// the own layers' file lists go into its <c>touches</c> folder, by diff ID.</param>
/// <param name="TempDirectory">Temporary files; the system's when null.</param>
public sealed record RegistryRebaseSettings(string IndexCacheDirectory, string? TempDirectory = null);

/// <summary>What a registry rebase did, beyond the report.</summary>
/// <param name="Outcome">The report and the result (<see cref="RebaseOutcome.ImageId"/> is the config digest, the image ID an engine gives it).</param>
/// <param name="Target">Where the manifest went (null: nothing pushed).</param>
/// <param name="ManifestDigest">The pushed manifest's digest.</param>
/// <param name="Mounted">Layer blobs mounted into the target repository from another one.</param>
/// <param name="UploadedBytes">Bytes uploaded: the config (when the registry lacked it) and the manifest.</param>
/// <param name="LayersStreamed">Own layers whose tar headers were read from the registry (a GET of the blob, bodies read and discarded).</param>
/// <param name="LayersFromCache">Own layers whose file lists came from the local caches (no request).</param>
/// <param name="BaseLayersStreamed">Base layers read from the registry to index a base not in the index cache.</param>
public sealed record RegistryRebaseOutcome(RebaseOutcome Outcome, ImageReference? Target, Digest? ManifestDigest, int Mounted, long UploadedBytes,
    int LayersStreamed, int LayersFromCache, int BaseLayersStreamed);

/// <summary>
/// <c>layertool rebase --registry</c>: a manifest-only rebase. Only manifests and configs are fetched; layer blobs are
/// never pulled into storage nor uploaded: the image's own layers stay in (or are mounted from) its repository, the new
/// base's are mounted from the new base's repository (<c>POST …/blobs/uploads/?mount=&amp;from=</c>), then the new config
/// and manifest are pushed. The conflict check needs the bases' filesystems (the base-index cache, by config digest, as
/// the engine rebase and squash fill it; else each base layer is streamed once and indexed) and the own layers' file
/// lists only: the touches cache by diff ID, else the blob cache's copy, else a GET of the blob whose tar headers are
/// read while the file bodies are read and discarded (a gzip stream cannot be skipped through; HTTP has no cheaper way
/// than a Range request per entry). Both are read only when the two bases' filesystems differ.
/// </summary>
public sealed class RegistryRebaser
{
    private readonly RegistryClient _client;
    private readonly RegistryRebaseSettings _settings;
    private readonly BaseIndexCache _indexes;
    private readonly LayerTouchesCache _touches;

    public RegistryRebaser(RegistryClient client, RegistryRebaseSettings settings)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(settings);
        _client = client;
        _settings = settings;
        _indexes = new BaseIndexCache(settings.IndexCacheDirectory);
        _touches = new LayerTouchesCache(Path.Combine(settings.IndexCacheDirectory, "touches"));
    }

    public async Task<RegistryRebaseOutcome> RebaseAsync(RegistryRebaseRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var keys = request.TakeBaseConfig.Select(BaseConfigDiff.Normalize).ToList();
        var registry = request.Image.Registry;
        foreach (var (reference, role) in new (ImageReference? Reference, string Role)[] { (request.Onto, "the new base"), (request.From, "the old base"), (request.Target, "the target") })
        {
            if (reference is { } r && !string.Equals(r.Registry, registry, StringComparison.OrdinalIgnoreCase))
            {
                throw new RegistryException(
                    $"{r.FamiliarString} ({role}) is in registry {r.Registry}, the image in {registry}: a registry rebase mounts blobs within one registry; copy the base there first (layertool pull/push)");
            }
        }

        var imageTask = LoadAsync(request.Image, "the image", cancellationToken);
        var ontoTask = LoadAsync(request.Onto, "the new base", cancellationToken);
        await Task.WhenAll(imageTask, ontoTask).ConfigureAwait(false);
        var image = await imageTask.ConfigureAwait(false);
        var newBase = await ontoTask.ConfigureAwait(false);

        RegistryImage oldBase;
        string oldName;
        string foundBy;
        if (request.From is { } from)
        {
            oldBase = await LoadAsync(from, "the old base", cancellationToken).ConfigureAwait(false);
            (oldName, foundBy) = (request.Names.From ?? from.FamiliarString, "--from");
        }
        else
        {
            (oldBase, oldName, foundBy) = await FindOldBaseAsync(request, image, cancellationToken).ConfigureAwait(false);
        }

        Rebaser.CheckPrefix(image.Config, oldBase.Config, request.Names.Image, oldName);

        var streamedBase = 0;
        var (oldIndex, oldBaseStreamed) = await BaseIndexAsync(oldBase, cancellationToken).ConfigureAwait(false);
        using var ownedOld = oldIndex;
        var (newIndex, newBaseStreamed) = await BaseIndexAsync(newBase, cancellationToken).ConfigureAwait(false);
        using var ownedNew = newIndex;
        streamedBase += oldBaseStreamed + newBaseStreamed;

        var streamed = 0;
        var fromCache = 0;
        var plan = await RebaseCheck.PlanWithFileListsAsync(new RebaseRequest
        {
            Image = image.AsImage(),
            OldBase = oldBase.AsImage(),
            NewBase = newBase.AsImage(),
            NewBaseName = request.Names.Onto,
            NewBaseDigest = newBase.Resolved.Fetched.Digest,
            TakeBaseConfig = keys,
        }, new RebaseNames(request.Names.Image, oldName, foundBy, request.Names.Onto), oldIndex, newIndex, async (own, ct) =>
        {
            var lists = new List<LayerTouches>(own.Count);
            foreach (var layer in own)
            {
                var (touches, wasStreamed) = await OwnLayerTouchesAsync(image.Reference, layer, ct).ConfigureAwait(false);
                lists.Add(touches);
                if (wasStreamed) streamed++;
                else fromCache++;
            }

            return lists;
        }, cancellationToken).ConfigureAwait(false);

        var result = plan.Result;
        var ownCount = result.Image.Layers.Count - result.NewBaseLayers;
        if (request.Strict && plan.Report.ConflictCount > 0)
        {
            return new RegistryRebaseOutcome(new RebaseOutcome(plan.Report, null, [], null, 0, null, ownCount), null, null, 0, 0, streamed, fromCache, streamedBase);
        }

        var (target, digest, mounted, uploaded) = await PushAsync(request, image, newBase, result, cancellationToken).ConfigureAwait(false);
        var outcome = new RebaseOutcome(plan.Report, result.ImageId.ToString(), [target.FamiliarString], null, uploaded, "registry", ownCount);
        return new RegistryRebaseOutcome(outcome, target, digest, mounted, uploaded, streamed, fromCache, streamedBase);
    }

    /// <summary>The old base without <c>--from</c>: what the image's annotations or labels name, when it is in the registry
    /// and a prefix of the image. A registry cannot be searched for the longest prefix as an engine can.</summary>
    private async Task<(RegistryImage Image, string Name, string FoundBy)> FindOldBaseAsync(RegistryRebaseRequest request, RegistryImage image,
        CancellationToken cancellationToken)
    {
        var hint = OldBaseHint.Of(image.Config, image.Resolved.Manifest.Annotations);
        var tried = new List<string>();
        if (hint?.Name is { } name && ImageReference.TryParse(name, out var named))
        {
            var candidates = new List<ImageReference>();
            if (named.Digest is null && hint.Digest is { } d && Digest.TryParse(d, out _) && ImageReference.TryParse($"{named.Name}@{d}", out var pinned))
                candidates.Add(pinned);
            candidates.Add(named);
            foreach (var candidate in candidates)
            {
                if (!string.Equals(candidate.Registry, image.Reference.Registry, StringComparison.OrdinalIgnoreCase))
                {
                    tried.Add($"{candidate.FamiliarString} (another registry)");
                    continue;
                }

                RegistryImage found;
                try
                {
                    found = await LoadAsync(candidate, "the old base", cancellationToken).ConfigureAwait(false);
                }
                catch (RegistryException e) when (e.StatusCode == 404)
                {
                    tried.Add($"{candidate.FamiliarString} (not found)");
                    continue;
                }

                var diffIds = found.Config.DiffIds;
                if (diffIds.Count < image.Config.DiffIds.Count && diffIds.SequenceEqual(image.Config.DiffIds.Take(diffIds.Count)))
                    return (found, name, hint.Source);
                tried.Add($"{candidate.FamiliarString} (not a prefix of the image's layers)");
            }
        }

        var why = hint is null
            ? $"it names none (no {SquashConfig.BaseNameLabel} annotation or label)"
            : $"its {hint.Source} names {hint.Name ?? hint.Digest}, and {(tried.Count == 0 ? "that is not a reference in this registry" : string.Join(", ", tried))}";
        throw new RebaseException($"cannot tell which base {request.Names.Image} was built on: {why}; a registry cannot be searched for the longest prefix: name it with --from.");
    }

    /// <summary>A base's filesystem: from the index cache (by config digest, the key squash and the engine rebase use too);
    /// else its layers, from the blob cache or streamed from the registry, merged and cached. Returns how many were streamed.</summary>
    private async Task<(FsIndex Index, int Streamed)> BaseIndexAsync(RegistryImage image, CancellationToken cancellationToken)
    {
        var id = image.Config.Digest.ToString();
        if (_indexes.TryGet(id) is { } cached)
        {
            if (cached.Config.DiffIds.SequenceEqual(image.Config.DiffIds)) return (cached.Index, 0);
            cached.Index.Dispose();
        }

        var streamed = 0;
        var openers = image.Layers.Select((layer, i) => (Func<CancellationToken, Task<Stream>>)(async ct =>
        {
            var (tar, wasStreamed) = await OpenLayerTarAsync(image.Reference, layer, $"{image.Reference.FamiliarString}: layer {i + 1}", ct).ConfigureAwait(false);
            if (wasStreamed) streamed++;
            return tar;
        })).ToList();
        var index = await FsIndex.FromLayersOnDiskAsync(openers, _settings.TempDirectory, cancellationToken).ConfigureAwait(false);
        _indexes.TryPut(id, index, image.Config);
        return (index, streamed);
    }

    /// <summary>An own layer's file list: the touches cache, else its tar (blob cache or registry) read for its headers.</summary>
    private async Task<(LayerTouches Touches, bool Streamed)> OwnLayerTouchesAsync(ImageReference repository, ILayer layer, CancellationToken cancellationToken)
    {
        if (_touches.TryGet(layer.DiffId) is { } known) return (known, false);
        var (tar, streamed) = await OpenLayerTarAsync(repository, (DescribedLayer)layer, $"{repository.FamiliarString}: layer {layer.DiffId}", cancellationToken)
            .ConfigureAwait(false);
        var touches = new LayerTouches();
        await using (tar.ConfigureAwait(false))
        {
            var reader = new LayerTarReader(tar, leaveOpen: true);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadNextAsync(cancellationToken).ConfigureAwait(false) is { } entry) touches.Add(entry);
            }

            // What follows the end-of-archive blocks (padding, the compressed stream's trailer): read so that the blob's
            // digest and the diff ID are checked before the list is trusted and cached.
            await tar.CopyToAsync(Stream.Null, cancellationToken).ConfigureAwait(false);
        }

        _touches.TryPut(layer.DiffId, touches);
        return (touches, streamed);
    }

    /// <summary>
    /// A layer's uncompressed tar: from the blob cache when a pull or push left the blob there, else streamed from the
    /// registry (nothing stored). gzip and zstd are told by their first bytes; the diff ID is checked when the tar is read
    /// to its end.
    /// </summary>
    private async Task<(Stream Tar, bool Streamed)> OpenLayerTarAsync(ImageReference repository, DescribedLayer layer, string what,
        CancellationToken cancellationToken)
    {
        var descriptor = layer.Descriptor!;
        if (_client.Cache.TryGet(descriptor, out var path))
            return (new CachedLayer(path, descriptor, layer.DiffId, what).Open(cancellationToken), false);
        var blob = await _client.OpenBlobStreamAsync(repository, descriptor, cancellationToken).ConfigureAwait(false);
        return (CachedLayer.OpenTar(blob, layer.DiffId, what, message => new RegistryException(message)), true);
    }

    /// <summary>
    /// Puts the result into the target repository: every layer blob it lacks mounted from the repository it is in (the
    /// image's own layers from the image's, the new base's from the new base's; none when that is the target), the config
    /// uploaded when missing, then the manifest, in the image's manifest format (OCI manifests also get the base
    /// annotations).
    /// </summary>
    private async Task<(ImageReference Target, Digest Digest, int Mounted, long Uploaded)> PushAsync(RegistryRebaseRequest request, RegistryImage image,
        RegistryImage newBase, RebasedImage result, CancellationToken cancellationToken)
    {
        var target = request.Target ?? request.Image;
        var manifestType = image.Resolved.Manifest.MediaType;
        var oci = manifestType == MediaTypes.OciManifest;
        var sources = new List<(Descriptor Blob, ImageReference From)>();
        sources.AddRange(newBase.Layers.Select(l => (l.Descriptor!, newBase.Reference)));
        sources.AddRange(image.Layers.Skip(result.OldBaseLayers).Select(l => (l.Descriptor!, image.Reference)));

        var mounted = 0;
        await Parallel.ForEachAsync(sources.DistinctBy(s => s.Blob.Digest),
            new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, _client.Settings.Jobs), CancellationToken = cancellationToken }, async (source, ct) =>
            {
                if (source.From.Repository == target.Repository) return; // the manifest PUT checks that the repository has it
                if (await _client.MountBlobAsync(target, source.Blob, source.From.Repository, ct).ConfigureAwait(false))
                {
                    Interlocked.Increment(ref mounted);
                }
                else if (!await _client.BlobExistsAsync(target, source.Blob, ct).ConfigureAwait(false))
                {
                    throw new RegistryException(
                        $"{target.Registry} did not mount blob {source.Blob.Digest} from {source.From.Repository} into {target.Repository} (a registry rebase transfers no layer; the registry must allow cross-repository mounts, and the credentials must read {source.From.Repository})");
                }

                _client.Cache.RecordSource(source.Blob.Digest, target.Registry, target.Repository);
            }).ConfigureAwait(false);

        long uploaded = 0;
        var config = result.Image.Config;
        var configType = image.Resolved.Manifest.Config.MediaType is { Length: > 0 } t ? t : oci ? MediaTypes.OciConfig : MediaTypes.DockerConfig;
        var configDescriptor = new Descriptor(configType, config.Digest, config.Bytes.Length);
        if (!await _client.BlobExistsAsync(target, configDescriptor, cancellationToken).ConfigureAwait(false))
        {
            var bytes = config.Bytes.ToArray();
            await _client.UploadBlobAsync(target, configDescriptor, () => new MemoryStream(bytes, writable: false), null, cancellationToken).ConfigureAwait(false);
            uploaded += bytes.Length;
        }

        var layers = sources.Select(s => InFamily(s.Blob, oci)).ToList();
        var annotations = oci ? Annotations(image.Resolved.Manifest.Annotations, request.Names.Onto, newBase.Resolved.Fetched.Digest) : null;
        var manifest = new ImageManifest(manifestType, configDescriptor, layers) { Annotations = annotations };
        var manifestBytes = manifest.ToBytes();
        if (target.Tag is null) target = ImageReference.Parse($"{target.Name}@{Digest.Compute(manifestBytes)}");
        var digest = await _client.PutManifestAsync(target, manifestBytes, manifestType, cancellationToken).ConfigureAwait(false);
        uploaded += manifestBytes.Length;
        return (target, digest, mounted, uploaded);
    }

    /// <summary>The image's manifest annotations with the base ones naming the new base.</summary>
    private static Dictionary<string, string> Annotations(IReadOnlyDictionary<string, string>? image, string baseName, Digest baseDigest)
    {
        var annotations = image is null ? new Dictionary<string, string>(StringComparer.Ordinal) : new Dictionary<string, string>(image, StringComparer.Ordinal);
        annotations[SquashConfig.BaseNameLabel] = baseName;
        annotations[SquashConfig.BaseDigestLabel] = baseDigest.ToString();
        return annotations;
    }

    /// <summary>A layer descriptor under the manifest family's media type (the blob is the same either way).</summary>
    private static Descriptor InFamily(Descriptor blob, bool oci)
    {
        var mediaType = (blob.MediaType, oci) switch
        {
            (MediaTypes.DockerLayerGzip, true) => MediaTypes.OciLayerGzip,
            (MediaTypes.DockerLayer, true) => MediaTypes.OciLayer,
            (MediaTypes.OciLayerGzip, false) => MediaTypes.DockerLayerGzip,
            (MediaTypes.OciLayer, false) => MediaTypes.DockerLayer,
            _ => blob.MediaType,
        };
        return blob with { MediaType = mediaType, Annotations = null, Platform = null };
    }

    private async Task<RegistryImage> LoadAsync(ImageReference reference, string role, CancellationToken cancellationToken)
    {
        ResolvedManifest resolved;
        try
        {
            resolved = await _client.ResolveAsync(reference, cancellationToken).ConfigureAwait(false);
        }
        catch (RegistryException e) when (e.StatusCode == 404)
        {
            throw new RegistryException($"{e.Message} ({role})", e) { StatusCode = 404, ErrorCode = e.ErrorCode };
        }

        var manifest = resolved.Manifest;
        var configPath = await _client.FetchBlobAsync(reference, manifest.Config, cancellationToken).ConfigureAwait(false);
        ImageConfig config;
        try
        {
            config = ImageConfig.Parse(await File.ReadAllBytesAsync(configPath, cancellationToken).ConfigureAwait(false),
                $"{reference.FamiliarString}: config {manifest.Config.Digest}");
        }
        catch (ImageFormatException e)
        {
            throw new RegistryException(e.Message, e);
        }

        if (manifest.Layers.Count != config.DiffIds.Count)
        {
            throw new RegistryException(
                $"{reference.FamiliarString}: the manifest lists {manifest.Layers.Count} layers but the config's rootfs.diff_ids has {config.DiffIds.Count}");
        }

        var layers = manifest.Layers.Select((d, i) => new DescribedLayer(config.DiffIds[i], d)).ToList();
        for (var i = 0; i < layers.Count; i++) _client.Cache.RecordDiffId(config.DiffIds[i], manifest.Layers[i]);
        return new RegistryImage(reference, resolved, config, layers);
    }

    /// <summary>An image in the registry: its manifest, its config, its layers by descriptor (none fetched).</summary>
    private sealed record RegistryImage(ImageReference Reference, ResolvedManifest Resolved, ImageConfig Config, IReadOnlyList<DescribedLayer> Layers)
    {
        public ComposedImage AsImage() => new(Config, Layers);
    }
}
