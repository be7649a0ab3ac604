using LayerTool.Docker.Images;
using LayerTool.Docker.Overlay2;
using LayerTool.Image;
using LayerTool.Image.Formats;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Index;
using LayerTool.Image.Rebase;
using LayerTool.Image.Squash;

namespace LayerTool.Docker.Rebase;

/// <summary>Where an engine rebase keeps its files.</summary>
/// <param name="CacheDirectory">The base-index cache, shared with squash (indexes of a base's layers, by image ID).</param>
/// <param name="TempDirectory">Temporary files (saves, archives); the system's when null.</param>
/// <param name="FastPath">Read the image (and a base not in the cache) from the engine's overlay2 store when it is local and
/// readable (<see cref="TarSplitLayer"/>: the exact config and the layer tars reassembled, no <c>docker save</c>).</param>
public sealed record EngineRebaseSettings(string CacheDirectory, string? TempDirectory = null, bool FastPath = true);

/// <summary>One engine rebase.</summary>
/// <param name="Image">The image (reference or ID).</param>
/// <param name="Onto">The new base.</param>
/// <param name="From">The old base; null to find it (labels, then the longest local prefix).</param>
/// <param name="Tags">Tags for the result.</param>
/// <param name="Strict">Tag and write nothing when there is a conflict.</param>
/// <param name="TakeBaseConfig">The <c>--take-base-config</c> keys.</param>
/// <param name="Load">Load the result into the engine (and tag it).</param>
/// <param name="Output">Also write the result here.</param>
/// <param name="OutputFormat"><c>docker</c> or <c>oci</c>.</param>
public sealed record EngineRebaseRequest(string Image, string Onto, string? From, IReadOnlyList<string> Tags, bool Strict,
    IReadOnlyList<string> TakeBaseConfig, bool Load = true, string? Output = null, string OutputFormat = "docker");

/// <summary>
/// <c>layertool rebase</c> against an engine. The image's own layers and config come from a save of the image;
/// the two bases' filesystems from the base-index cache (or a save of each base, then cached). The result is
/// loaded as a docker-archive naming the new base's layers without their files: first with no layer file at
/// all (config and manifest only; enough where the engine already has the own layers on top of the new base),
/// else with the own layers' tars (the graph-driver store keys layers by chain ID, so the same layer over
/// another base is a new layer to it). The loaded image's <c>RootFS.Layers</c> are checked before any tag.
/// </summary>
public sealed class EngineRebaseService
{
    private readonly IImageEngine _engine;
    private readonly IImageLister _lister;
    private readonly EngineRebaseSettings _settings;
    private readonly BaseIndexCache _cache;

    public EngineRebaseService(IImageEngine engine, IImageLister lister, EngineRebaseSettings settings)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(lister);
        ArgumentNullException.ThrowIfNull(settings);
        _engine = engine;
        _lister = lister;
        _settings = settings;
        _cache = new BaseIndexCache(settings.CacheDirectory);
    }

    public async Task<RebaseOutcome> RebaseAsync(EngineRebaseRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.OutputFormat is not ("docker" or "oci"))
            throw new ArgumentException($"unknown output format '{request.OutputFormat}' (docker or oci)", nameof(request));
        foreach (var tag in request.Tags) _ = DockerImageEngine.SplitTag(tag);
        var keys = request.TakeBaseConfig.Select(BaseConfigDiff.Normalize).ToList();

        var imageTask = _engine.TryInspectImageAsync(request.Image, cancellationToken);
        var ontoTask = _engine.TryInspectImageAsync(request.Onto, cancellationToken);
        var storeTask = _engine.GetStoreKindAsync(cancellationToken);
        await Task.WhenAll(imageTask, ontoTask, storeTask).ConfigureAwait(false);
        var image = await imageTask.ConfigureAwait(false) ?? throw new EngineException($"no such image: {request.Image}");
        var newBase = await ontoTask.ConfigureAwait(false) ?? throw new EngineException($"no such image: {request.Onto} (the new base)");
        if (request.Load && await storeTask.ConfigureAwait(false) == ImageStoreKind.Containerd)
        {
            throw new EngineException(
                "rebasing into an engine that uses the containerd image store is not supported yet; rebase a saved archive with --input/--output instead");
        }

        // A wrong --from is refused before the image is saved (the engine's layer lists suffice).
        EngineImage? from = null;
        if (request.From is not null)
        {
            from = await _engine.TryInspectImageAsync(request.From, cancellationToken).ConfigureAwait(false)
                   ?? throw new EngineException($"no such image: {request.From} (the old base)");
            CheckPrefix(from, image, request.From, request.Image);
        }

        // The image's config and own layers: from the overlay2 store when it is local (nothing copied), else a save.
        IImage saved;
        ImageArchive? save = null;
        string readWith;
        string? why = "--no-fast-path";
        if ((_settings.FastPath ? TarSplitLayer.TryOpenImage(image, out why) : null) is { } local)
        {
            (saved, readWith) = (local, "overlay2 layer store");
        }
        else
        {
            save = await EngineImageArchive.OpenAsync(_engine, image.Id, _settings.TempDirectory, cancellationToken).ConfigureAwait(false);
            (saved, readWith) = (save.GetImage(), $"docker save ({why})");
        }

        using var ownedSave = save;
        if (!saved.Config.DiffIds.Select(d => d.ToString()).SequenceEqual(image.DiffIds, StringComparer.Ordinal))
            throw new EngineException($"the save of image {request.Image} does not hold the layers the engine reports for it");

        EngineImage oldBase;
        string oldName;
        string foundBy;
        if (from is not null)
        {
            (oldBase, oldName, foundBy) = (from, request.From!, "--from");
        }
        else
        {
            (oldBase, oldName, foundBy) = await FindOldBaseAsync(request, image, saved, cancellationToken).ConfigureAwait(false);
        }

        CheckPrefix(oldBase, image, oldName, request.Image);

        var (oldIndex, oldConfig) = await BaseAsync(oldBase, cancellationToken).ConfigureAwait(false);
        using var ownedOldIndex = oldIndex;
        var (newIndex, newConfig) = await BaseAsync(newBase, cancellationToken).ConfigureAwait(false);
        using var ownedNewIndex = newIndex;
        var plan = await RebaseCheck.PlanAsync(new RebaseRequest
        {
            Image = saved,
            OldBase = Described(oldConfig),
            NewBase = Described(newConfig),
            NewBaseName = request.Onto,
            NewBaseDigest = BaseDigest(newBase),
            TakeBaseConfig = keys,
        }, new RebaseNames(request.Image, oldName, foundBy, request.Onto), oldIndex, newIndex, null, cancellationToken).ConfigureAwait(false);
        var result = plan.Result;
        var own = result.Image.Layers.Count - result.NewBaseLayers;
        if (request.Strict && plan.Report.ConflictCount > 0) return new RebaseOutcome(plan.Report, null, [], null, 0, null, own) { ReadWith = readWith };

        if (request.Output is not null) await WriteOutputAsync(request, result, newBase, cancellationToken).ConfigureAwait(false);
        if (!request.Load) return new RebaseOutcome(plan.Report, result.ImageId.ToString(), [], request.Output, 0, null, own) { ReadWith = readWith };

        var (id, bytes, how) = await LoadAsync(result, cancellationToken).ConfigureAwait(false);
        foreach (var tag in request.Tags) await _engine.TagImageAsync(id, tag, cancellationToken).ConfigureAwait(false);
        return new RebaseOutcome(plan.Report, id, request.Tags, request.Output, bytes, how, own) { ReadWith = readWith };
    }

    /// <summary>The old base without <c>--from</c>: the image's base labels (when they name a local prefix of it); else
    /// the local image whose layers are the longest proper prefix of the image's.</summary>
    private async Task<(EngineImage Image, string Name, string FoundBy)> FindOldBaseAsync(EngineRebaseRequest request, EngineImage image, IImage saved,
        CancellationToken cancellationToken)
    {
        if (OldBaseHint.Of(saved.Config, null) is { } hint)
        {
            foreach (var candidate in hint.Candidates())
            {
                EngineImage? found;
                try
                {
                    found = await _engine.TryInspectImageAsync(candidate, cancellationToken).ConfigureAwait(false);
                }
                catch (EngineException)
                {
                    continue; // e.g. name@digest of an image pulled by tag only
                }

                if (found is not null && IsProperPrefix(found, image)) return (found, hint.Name ?? candidate, hint.Source);
            }
        }

        var ids = await _lister.ListImageIdsAsync(cancellationToken).ConfigureAwait(false);
        using var gate = new SemaphoreSlim(8);
        var inspected = await Task.WhenAll(ids.Where(id => id != image.Id).Select(async id =>
        {
            await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                return await _engine.TryInspectImageAsync(id, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                gate.Release();
            }
        })).ConfigureAwait(false);
        var target = image.DiffIds.Select(Digest.Parse).ToList();
        // Tagged images first: the untagged ones include a classic build's intermediate images, every one of them a
        // prefix of the image and none of them its base.
        var local = inspected.OfType<EngineImage>().Where(i => i.DiffIds.Count > 0).ToList();
        var best = OldBaseHint.LongestPrefix(target, Candidates(local.Where(Tagged)))
                   ?? OldBaseHint.LongestPrefix(target, Candidates(local.Where(i => !Tagged(i))));
        return best is not null
            ? (best, best.RepoTags.FirstOrDefault(t => t != "<none>:<none>") ?? best.Id, "prefix")
            : throw new RebaseException(
                $"cannot tell which base {request.Image} was built on: it names none ({SquashConfig.BaseNameLabel} label) and no local image has a prefix of its layers; name it with --from.");
    }

    /// <summary>The pure check's refusal (<see cref="Rebaser.CheckPrefix"/>) on the engine's layer lists, before any base is read.</summary>
    private static void CheckPrefix(EngineImage oldBase, EngineImage image, string oldName, string imageName)
    {
        if (oldBase.DiffIds.Count > image.DiffIds.Count || !oldBase.DiffIds.SequenceEqual(image.DiffIds.Take(oldBase.DiffIds.Count), StringComparer.Ordinal))
            _ = Rebaser.CheckPrefix(ConfigOf(image), ConfigOf(oldBase), imageName, oldName);
    }

    private static bool Tagged(EngineImage image) => image.RepoTags.Any(t => t != "<none>:<none>");

    private static IEnumerable<(EngineImage, IReadOnlyList<Digest>)> Candidates(IEnumerable<EngineImage> images) =>
        images.Select(i => (i, (IReadOnlyList<Digest>)[.. i.DiffIds.Select(Digest.Parse)]));

    private static bool IsProperPrefix(EngineImage candidate, EngineImage image) =>
        candidate.DiffIds.Count < image.DiffIds.Count && candidate.DiffIds.SequenceEqual(image.DiffIds.Take(candidate.DiffIds.Count), StringComparer.Ordinal);

    /// <summary>A config with only the diff IDs (for the prefix check's message).</summary>
    private static ImageConfig ConfigOf(EngineImage image) =>
        ImageConfig.FromJson(new System.Text.Json.Nodes.JsonObject()).WithDiffIds(image.DiffIds.Select(Digest.Parse));

    private static ComposedImage Described(ImageConfig config) =>
        new(config, [.. config.DiffIds.Select(d => (ILayer)new DescribedLayer(d, null))]);

    /// <summary>A base's index (its layers merged) and config: from the cache, else from a save of the base (then cached).</summary>
    private async Task<(FsIndex Index, ImageConfig Config)> BaseAsync(EngineImage baseImage, CancellationToken cancellationToken)
    {
        if (_cache.TryGet(baseImage.Id) is { } cached)
        {
            if (cached.Config.DiffIds.Select(d => d.ToString()).SequenceEqual(baseImage.DiffIds, StringComparer.Ordinal)) return cached;
            cached.Index.Dispose();
        }

        if ((_settings.FastPath ? TarSplitLayer.TryOpenImage(baseImage, out _) : null) is { } local)
        {
            var fromStore = await RebaseCheck.IndexAsync(local, _settings.TempDirectory, cancellationToken).ConfigureAwait(false);
            _cache.TryPut(baseImage.Id, fromStore, local.Config);
            return (fromStore, local.Config);
        }

        using var archive = await EngineImageArchive.OpenAsync(_engine, baseImage.Id, _settings.TempDirectory, cancellationToken).ConfigureAwait(false);
        var saved = archive.GetImage();
        var index = await RebaseCheck.IndexAsync(saved, _settings.TempDirectory, cancellationToken).ConfigureAwait(false);
        _cache.TryPut(baseImage.Id, index, saved.Config);
        return (index, saved.Config);
    }

    private static Digest? BaseDigest(EngineImage image)
    {
        foreach (var repoDigest in image.RepoDigests)
        {
            var at = repoDigest.IndexOf('@', StringComparison.Ordinal);
            if (at > 0 && Digest.TryParse(repoDigest[(at + 1)..], out var d)) return d;
        }

        return Digest.TryParse(image.Id, out var id) ? id : null;
    }

    /// <summary>
    /// Loads the result: config and manifest only (every layer named, none sent), else with the image's own
    /// layers. Returns the image ID, the bytes sent and which way worked; throws when the engine's image does not
    /// have exactly the result's layers.
    /// </summary>
    private async Task<(string Id, long Bytes, string How)> LoadAsync(RebasedImage result, CancellationToken cancellationToken)
    {
        var image = result.Image;
        var id = result.ImageId.ToString();
        var expected = image.Config.DiffIds.Select(d => d.ToString()).ToList();
        long sent = 0;
        var minimal = ImageArchiveWriter.TryOpenDockerArchive(image, new ImageWriteOptions { OmitLayers = image.Layers.Count })
                      ?? throw new InvalidOperationException("an archive with every layer omitted is always a stream");
        await using (minimal.ConfigureAwait(false))
        {
            sent += minimal.Length;
            try
            {
                await _engine.LoadImageAsync(minimal, cancellationToken).ConfigureAwait(false);
                if (await HasLayersAsync(id, expected, cancellationToken).ConfigureAwait(false)) return (id, sent, "config+manifest");
            }
            catch (EngineException)
            {
                // The engine lacks the own layers over the new base (graph-driver store: layers by chain ID): send them.
            }
        }

        var path = Path.Combine(_settings.TempDirectory ?? Path.GetTempPath(), $"layertool-rebase-{Guid.NewGuid():N}.tar");
        try
        {
            await ImageArchiveWriter.WriteAsync(path, image, new ImageWriteOptions
            {
                OmitLayers = result.NewBaseLayers,
                TemporaryDirectory = _settings.TempDirectory,
            }, cancellationToken).ConfigureAwait(false);
            var archive = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
            await using (archive.ConfigureAwait(false))
            {
                sent += archive.Length;
                await _engine.LoadImageAsync(archive, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            File.Delete(path);
        }

        return await HasLayersAsync(id, expected, cancellationToken).ConfigureAwait(false)
            ? (id, sent, "own layers")
            : throw new EngineException($"the engine loaded the rebased image but its layers are not the expected ones ({string.Join(", ", expected)})");
    }

    private async Task<bool> HasLayersAsync(string id, List<string> expected, CancellationToken cancellationToken)
    {
        var loaded = await _engine.TryInspectImageAsync(id, cancellationToken).ConfigureAwait(false);
        return loaded is not null && loaded.DiffIds.SequenceEqual(expected, StringComparer.Ordinal);
    }

    /// <summary>The whole result to a file: the new base's layers from a save of it, the own layers from the image's save.</summary>
    private async Task WriteOutputAsync(EngineRebaseRequest request, RebasedImage result, EngineImage newBase, CancellationToken cancellationToken)
    {
        using var baseSave = await EngineImageArchive.OpenAsync(_engine, newBase.Id, _settings.TempDirectory, cancellationToken).ConfigureAwait(false);
        var baseLayers = baseSave.GetImage().Layers;
        var full = new ComposedImage(result.Image.Config, [.. baseLayers, .. result.OwnLayers]);
        var oci = request.OutputFormat == "oci";
        var tags = request.Tags.Select(ImageReference.Parse).Select(r => r.Tag is null ? r.WithTag(ImageReference.DefaultTag) : r).ToList();
        await ImageArchiveWriter.WriteAsync(request.Output!, full, new ImageWriteOptions
        {
            Format = oci ? ImageArchiveFormat.OciLayout : ImageArchiveFormat.DockerArchive,
            AsDirectory = oci && !request.Output!.EndsWith(".tar", StringComparison.OrdinalIgnoreCase),
            Tags = tags,
            TemporaryDirectory = _settings.TempDirectory,
        }, cancellationToken).ConfigureAwait(false);
    }
}
