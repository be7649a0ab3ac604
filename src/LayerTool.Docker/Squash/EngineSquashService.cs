using LayerTool.Build;
using LayerTool.Build.Squash;
using LayerTool.Docker.Images;
using LayerTool.Docker.Overlay2;
using LayerTool.Docker.Sweep;
using LayerTool.Image;
using LayerTool.Image.Formats;
using LayerTool.Image.Layers;
using LayerTool.Image.Squash;

namespace LayerTool.Docker.Squash;

/// <summary>Settings of <see cref="EngineSquashService"/>.</summary>
/// <param name="CacheDirectory">Where base indexes are cached (e.g. <c>~/.cache/layertool/index</c>).</param>
/// <param name="TempDirectory">Where layers and spills go; the system temp directory when null.</param>
/// <param name="Clock">The time of a non-reproducible squash; the system clock when null.</param>
public sealed record EngineSquashSettings(string CacheDirectory, string? TempDirectory = null, TimeProvider? Clock = null)
{
    /// <summary>Ways to read the final image, tried in order (e.g. a local overlay2 fast path); the
    /// export-based <see cref="ExportImageSource"/> is always tried last.</summary>
    public IReadOnlyList<IFinalImageSourceFactory> FinalImageSources { get; init; } = [];

    /// <summary>
    /// On the overlay2 fast path, feed the new layer to <c>docker load</c> through a named pipe in the engine's
    /// temp directory (the default; see <see cref="LoadPipe"/>). False: stream it inside the uploaded archive.
    /// </summary>
    public bool LoadThroughPipe { get; init; } = true;

    /// <summary>How long the pipe may take to appear in the engine's temp directory once the squash's first pass
    /// is done (the engine makes it as soon as it receives the archive's head); after that the layer is streamed
    /// inside the archive instead. When no upload at all is being unpacked there, a second is enough.</summary>
    public TimeSpan LoadPipeWait { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// <see cref="ISquashService"/> against an engine. The final image's filesystem is read from an export of
/// a never-started container (one pass, walk order), with the paths the engine's init layer shadows taken
/// from the image's own layers (from a save, which also gives the exact config). The base's index comes
/// from the cache or from a save of the base. The verified result is written to a file and/or loaded:
/// first a partial archive (the engine has the base's layers), then a full one if the engine refuses;
/// the loaded image's layers are checked before anything is tagged.
/// </summary>
public sealed class EngineSquashService : ISquashService
{
    private readonly IImageEngine _engine;
    private readonly BaseIndexCache _cache;
    private readonly EngineSquashSettings _settings;

    public EngineSquashService(IImageEngine engine, EngineSquashSettings settings)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(settings);
        _engine = engine;
        _settings = settings;
        _cache = new BaseIndexCache(settings.CacheDirectory);
    }

    public async Task<SquashResult> SquashAsync(SquashRequest request, IProgress<SquashProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var tags = request.Tags.Select(ParseTag).ToList();
        if (request.OutputFormat is not ("docker" or "oci"))
            throw new ArgumentException($"unknown output format '{request.OutputFormat}' (docker or oci)", nameof(request));

        // Three independent round trips to the engine (/info is the slowest), sent side by side.
        var finalTask = _engine.TryInspectImageAsync(request.Image, cancellationToken);
        var baseTask = request.Base is null ? Task.FromResult<EngineImage?>(null) : _engine.TryInspectImageAsync(request.Base, cancellationToken);
        var storeTask = _engine.GetStoreKindAsync(cancellationToken);
        await Task.WhenAll(finalTask, baseTask, storeTask).ConfigureAwait(false);
        var final = await finalTask.ConfigureAwait(false) ?? throw new EngineException($"no such image: {request.Image}");
        var baseImage = await baseTask.ConfigureAwait(false);
        if (request.Base is not null && baseImage is null) throw new EngineException($"no such image: {request.Base} (the base)");
        var store = await storeTask.ConfigureAwait(false);

        // --- overlay2 fast path hook (Overlay2/Overlay2Squash.cs) ---
        string? fastReason = "disabled (--no-fast-path)";
        var fast = request.FastPath && store == ImageStoreKind.GraphDriver
            ? Overlay2Squash.TryCreate(final, baseImage, out fastReason)
            : null;
        if (request.FastPath && store != ImageStoreKind.GraphDriver) fastReason = "the engine uses the containerd image store";
        var method = fast is not null ? "fast path (overlay2 layer directories)" : $"engine API (no fast path: {fastReason})";
        progress?.Report(new SquashProgress(method, 0, null));
        if (fast is not null)
            return await FastSquashAsync(fast, request, final, baseImage, store, tags, method, progress, cancellationToken).ConfigureAwait(false);
        // --- end of the fast path hook ---

        progress?.Report(new SquashProgress("read", 0, null));
        // The final image's config and the base's index are read side by side (the engine streams both).
        var opening = OpenFinalAsync(final, cancellationToken);
        FsIndex baseIndex = FsIndex.Empty;
        IImage? baseForSquash = null;
        try
        {
            if (baseImage is not null)
            {
                var (index, config) = await BaseAsync(baseImage, null, cancellationToken).ConfigureAwait(false);
                baseIndex = index;
                baseForSquash = new ComposedImage(config, [.. config.DiffIds.Select(d => (ILayer)new DescribedLayer(d, null))]);
            }
        }
        catch
        {
            await DisposeWhenOpenedAsync(opening).ConfigureAwait(false);
            throw;
        }

        using var source = await opening.ConfigureAwait(false);
        return await SquashAndDeliverAsync(request, final, baseImage, source.Image,
            (index, output, options, ct) => source.WriteLayerAsync(index, output, options, ct),
            baseIndex, baseForSquash, store, tags, method, final.Size, progress, cancellationToken, finalRoot: source.Root).ConfigureAwait(false);
    }

    /// <summary>The squash through the overlay2 fast path: same diff, verification and delivery as below.</summary>
    private async Task<SquashResult> FastSquashAsync(Overlay2Squash fast, SquashRequest request, EngineImage final, EngineImage? baseImage,
        ImageStoreKind store, IReadOnlyList<ImageReference> tags, string method, IProgress<SquashProgress>? progress, CancellationToken cancellationToken)
    {
        progress?.Report(new SquashProgress("base", 0, null));
        FsIndex baseIndex = FsIndex.Empty;
        IImage? baseForSquash = null;
        if (baseImage is not null)
        {
            var (index, config) = await BaseAsync(baseImage, fast, cancellationToken).ConfigureAwait(false);
            baseIndex = index;
            baseForSquash = new ComposedImage(config, [.. config.DiffIds.Select(d => (ILayer)new DescribedLayer(d, null))]);
        }
        var finalRoot = await fast.FindRootAsync(cancellationToken).ConfigureAwait(false);
        return await SquashAndDeliverAsync(request, final, baseImage, fast.FinalImage(), fast.WriteLayerAsync,
            baseIndex, baseForSquash, store, tags, method, null, progress, cancellationToken, fast, finalRoot).ConfigureAwait(false);
    }

    /// <summary>
    /// What both readers of the final image share: the diff and its verification (ImageSquasher), the
    /// optional output file, the load and the tags, and the result.
    /// </summary>
    private async Task<SquashResult> SquashAndDeliverAsync(SquashRequest request, EngineImage final, EngineImage? baseImage,
        IImage finalImage, SquashLayerWriter writeLayer, FsIndex baseIndex, IImage? baseForSquash, ImageStoreKind store,
        IReadOnlyList<ImageReference> tags, string method, long? totalBytes, IProgress<SquashProgress>? progress, CancellationToken cancellationToken,
        Overlay2Squash? fast = null, LayerEntry? finalRoot = null)
    {
        // The base index is this method's from here (an on-disk index holds a file open until disposed).
        using var ownedBaseIndex = baseIndex;
        var bytes = progress is null ? null : new Progress<long>(b => progress.Report(new SquashProgress("squash", b, totalBytes)));
        var spec = new SquashSpec
        {
            Final = finalImage,
            Base = baseForSquash,
            BaseIndex = baseIndex,
            BaseName = request.Base,
            BaseDigest = BaseDigest(baseImage),
            Message = request.Message,
            CreatedBy = request.Base is null ? "layertool squash --onto scratch" : $"layertool squash --onto {request.Base}",
            Timestamp = request.Timestamp,
            Now = (_settings.Clock ?? TimeProvider.System).GetUtcNow(),
            TempDirectory = _settings.TempDirectory,
            WriteLayer = writeLayer,
            // The base's root is not read through the engine: only a squash onto scratch writes the image's.
            Root = RootEntry.ToWrite(finalRoot, ontoScratch: request.Base is null, baseKnown: false, null),
        };
        // On the fast path the final image can be read twice cheaply (its layer directories), so the load runs
        // while the layer is written, with no layer file at all: through a pipe the engine reads the layer from
        // (it applies the layer as it comes), else inside a partial archive streamed to the engine.
        SquashedImage? streamed = null;
        string? loadedWhileWriting = null;
        var partialRefused = false;
        if (fast is not null && request.Load && request.OutputPath is null && store == ImageStoreKind.GraphDriver)
        {
            var piped = _settings.LoadThroughPipe && fast.EngineTempDirectory is { } engineTemp
                ? await SquashThroughPipeAsync(spec, engineTemp, bytes, progress, cancellationToken).ConfigureAwait(false)
                : null;
            (streamed, loadedWhileWriting, partialRefused) = piped
                ?? await SquashWhileLoadingAsync(spec, bytes, cancellationToken).ConfigureAwait(false);
        }
        var squashedNow = streamed ?? await ImageSquasher.SquashAsync(spec, bytes, cancellationToken).ConfigureAwait(false);
        using var squashed = squashedNow;

        if (request.OutputPath is not null)
        {
            progress?.Report(new SquashProgress("write", 0, null));
            await WriteOutputAsync(request, squashed, baseImage, tags, cancellationToken).ConfigureAwait(false);
        }

        var imageId = squashed.ImageId.ToString();
        if (request.Load)
        {
            progress?.Report(new SquashProgress("load", 0, null));
            imageId = loadedWhileWriting ?? await LoadAsync(squashed, baseImage, store, cancellationToken, tryPartial: !partialRefused).ConfigureAwait(false);
            // The image is loaded: tagging is the last act and takes milliseconds. A signal now must not leave some
            // tags made and the run reported as cancelled (the kill loop caught a SIGINT during the tag request: exit
            // 130, "cancelled", and the tag there), so the tags are made whatever comes, within a bound.
            using var tagging = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            foreach (var tag in request.Tags)
                await _engine.TagImageAsync(imageId, tag, tagging.Token).ConfigureAwait(false);
        }

        return new SquashResult(
            imageId,
            squashed.NewLayer?.DiffId.ToString() ?? "",
            final.DiffIds.Count,
            squashed.Layers.Count,
            final.Size,
            (baseImage?.Size ?? 0) + squashed.LayerSize,
            squashed.LayerSize,
            request.Load ? request.Tags : [],
            squashed.Warnings,
            method);
    }

    private static ImageReference ParseTag(string tag) =>
        ImageReference.TryParse(tag, out var reference, out var error) && reference.Digest is null
            ? reference
            : throw new EngineException($"invalid tag '{tag}': {error ?? "a tag cannot hold a digest"}");

    private static Digest? BaseDigest(EngineImage? image)
    {
        if (image is null) return null;
        foreach (var repoDigest in image.RepoDigests)
        {
            var at = repoDigest.IndexOf('@', StringComparison.Ordinal);
            if (at > 0 && Digest.TryParse(repoDigest[(at + 1)..], out var d)) return d;
        }
        return Digest.TryParse(image.Id, out var id) ? id : null;
    }

    private static Func<CancellationToken, Task<Stream>> Opener(ILayer layer) => ct => Task.FromResult(layer.Open(ct));

    /// <summary>The base's index and config: from the cache, else from a save of the base (its layers merged).</summary>
    private async Task<(FsIndex Index, ImageConfig Config)> BaseAsync(EngineImage baseImage, Overlay2Squash? fast, CancellationToken cancellationToken)
    {
        if (_cache.TryGet(baseImage.Id) is { } cached)
        {
            if (cached.Config.DiffIds.Select(d => d.ToString()).SequenceEqual(baseImage.DiffIds)) return cached;
            cached.Index.Dispose();
        }
        // Fast path, cold cache: index the base from its own layer directories instead of a save.
        if (fast is not null && Overlay2Layout.TryResolve(baseImage, out _) is { } baseLayout
            && Overlay2Squash.TryReadConfig(baseLayout, baseImage.Id, out _) is { } baseConfig)
        {
            var fromDisk = await fast.BuildBaseIndexAsync(_settings.TempDirectory, cancellationToken).ConfigureAwait(false);
            _cache.TryPut(baseImage.Id, fromDisk, baseConfig);
            return (fromDisk, baseConfig);
        }
        using var archive = await OpenSaveAsync(baseImage.Id, cancellationToken).ConfigureAwait(false);
        var saved = archive.GetImage();
        var index = await FsIndex.FromLayersOnDiskAsync([.. saved.Layers.Select(Opener)], _settings.TempDirectory, cancellationToken).ConfigureAwait(false);
        _cache.TryPut(baseImage.Id, index, saved.Config);
        return (index, saved.Config);
    }

    private Task<ImageArchive> OpenSaveAsync(string imageId, CancellationToken cancellationToken) =>
        EngineImageArchive.OpenAsync(_engine, imageId, _settings.TempDirectory, cancellationToken);

    private async Task WriteOutputAsync(SquashRequest request, SquashedImage squashed, EngineImage? baseImage, IReadOnlyList<ImageReference> tags,
        CancellationToken cancellationToken)
    {
        ImageArchive? baseArchive = null;
        try
        {
            IImage full = squashed;
            if (baseImage is not null)
            {
                baseArchive = await OpenSaveAsync(baseImage.Id, cancellationToken).ConfigureAwait(false);
                full = Compose(squashed, baseArchive.GetImage());
            }
            var oci = request.OutputFormat == "oci";
            await ImageArchiveWriter.WriteAsync(request.OutputPath!, full, new ImageWriteOptions
            {
                Format = oci ? ImageArchiveFormat.OciLayout : ImageArchiveFormat.DockerArchive,
                AsDirectory = oci && !request.OutputPath!.EndsWith(".tar", StringComparison.OrdinalIgnoreCase),
                Tags = tags,
                TemporaryDirectory = _settings.TempDirectory,
                ModificationTime = request.Timestamp ?? DateTimeOffset.UnixEpoch,
            }, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            baseArchive?.Dispose();
        }
    }

    /// <summary>The squashed config over the base's real layers (for a full archive).</summary>
    private static ComposedImage Compose(SquashedImage squashed, ArchiveImage baseImage)
    {
        var layers = new List<ILayer>(baseImage.Layers);
        if (squashed.NewLayer is not null) layers.Add(squashed.NewLayer);
        return new ComposedImage(squashed.Config, layers);
    }

    /// <summary>
    /// The squash with its load overlapped. The archive's head goes out at once; a first, metadata-only pass of
    /// the same diff gives the layer's exact size (its tar header comes next); the layer follows as it is
    /// written, and the config and manifest only once the squash is verified. A failed squash cuts the upload
    /// short, and an engine loads nothing from an archive that ends early. Returns the verified squash and the
    /// loaded image's ID; or no squash when the caller must squash again the usual way (into a file): the engine
    /// refused the partial archive (<c>PartialRefused</c>), or the layer came out other than measured.
    /// </summary>
    private async Task<(SquashedImage? Squashed, string? LoadedId, bool PartialRefused)> SquashWhileLoadingAsync(SquashSpec spec,
        IProgress<long>? bytes, CancellationToken cancellationToken)
    {
        var upload = new ArchiveUpload();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var loading = StartLoad(upload, stop.Token);
        SquashedImage? squashed = null;
        try
        {
            // The head goes out first: the engine starts its unpacking process while the layer is measured.
            var layer = upload.Writer;
            await layer.WriteAsync(StreamedDockerArchive.Head(DateTimeOffset.UnixEpoch), cancellationToken).ConfigureAwait(false);
            await layer.FlushAsync(cancellationToken).ConfigureAwait(false);
            long size;
            using (var measured = await spec.WriteLayer(spec.BaseIndex, Stream.Null, new LayerDiffOptions
            {
                MeasureOnly = true,
                ClampTime = spec.Timestamp,
                TempDirectory = spec.TempDirectory,
                ReopenContent = spec.ReopenContent,
            }, cancellationToken).ConfigureAwait(false))
            {
                size = measured.Size;
                if (measured.Entries == 0)
                {
                    // Only the config changed: nothing to stream, and a truncated archive loads nothing.
                    await AbandonAsync(upload, stop, loading).ConfigureAwait(false);
                    return (null, null, false);
                }
            }
            await layer.WriteAsync(StreamedDockerArchive.LayerHeader(size, DateTimeOffset.UnixEpoch), cancellationToken).ConfigureAwait(false);
            squashed = await ImageSquasher.SquashAsync(spec with { LayerStream = layer }, bytes, cancellationToken).ConfigureAwait(false);
            if (squashed.NewLayer is null || squashed.LayerSize != size)
            {
                // The layer directories changed under the squash: send nothing more, and squash again from scratch.
                await AbandonAsync(upload, stop, loading).ConfigureAwait(false);
                squashed.Dispose();
                return (null, null, false);
            }
            await layer.WriteAsync(StreamedDockerArchive.Suffix(squashed, squashed.BaseLayerCount, size, DateTimeOffset.UnixEpoch), cancellationToken)
                .ConfigureAwait(false);
            await upload.CompleteAsync().ConfigureAwait(false);
            await loading.ConfigureAwait(false);
            if (await LoadedIdAsync(squashed.ImageId.ToString(), ExpectedLayers(squashed), cancellationToken).ConfigureAwait(false) is { } id)
                return (squashed, id, false);
            // The engine loaded something else: squash again into a file and load a full archive, as LoadAsync does.
            squashed.Dispose();
            return (null, null, true);
        }
        catch (Exception e) when (e is EngineException or ArchiveUpload.ClosedException && !cancellationToken.IsCancellationRequested)
        {
            // The engine turned the partial archive down (the upload stops taking bytes, or the load fails):
            // squash again into a file and load a full archive, as LoadAsync does.
            await AbandonAsync(upload, stop, loading).ConfigureAwait(false);
            squashed?.Dispose();
            return (null, null, true);
        }
        catch
        {
            await AbandonAsync(upload, stop, loading).ConfigureAwait(false);
            squashed?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The squash loaded through a pipe (<see cref="LoadPipe"/>). The archive's head, with the pipe as the new
    /// layer, goes out at once, and the engine makes the pipe while LayerTool squashes a first time, in full and
    /// verified, into no file: that gives the diffID the config must carry before the engine reads the layer.
    /// The config and manifest then go out; the engine opens the pipe when it reaches the new layer, and the
    /// same diff, run again, is written into it while the engine applies it (and checks its diffID). Returns
    /// what <see cref="SquashWhileLoadingAsync"/> does, or null when the pipe cannot be used here (it never
    /// appeared, or the second pass differed): the caller then streams the layer inside the archive.
    /// </summary>
    private async Task<(SquashedImage? Squashed, string? LoadedId, bool PartialRefused)?> SquashThroughPipeAsync(SquashSpec spec, string engineTemp,
        IProgress<long>? bytes, IProgress<SquashProgress>? progress, CancellationToken cancellationToken)
    {
        var directory = LoadPipe.NewDirectoryName();
        // A load left waiting on its pipe by a LayerTool killed at the wrong moment is ended first.
        Sweeper.ReleasePipes(engineTemp);
        var upload = new ArchiveUpload();
        // Not linked to the caller's token: once the archive is complete the engine goes on with the load whether
        // or not the request is still there, and only the request's end tells that it will never open the pipe.
        // Before that, a cancelled squash cuts the upload short itself (AbandonAsync).
        using var stop = new CancellationTokenSource();
        var importsBefore = LoadPipe.Imports(engineTemp);
        var uploadStarted = DateTime.UtcNow;
        var loading = StartLoad(upload, stop.Token);
        SquashedImage? squashed = null;
        string? sent = null; // the pipe, once the whole archive is sent
        var released = false; // the pipe was opened for the engine (or the load ended without it)
        try
        {
            await upload.Writer.WriteAsync(StreamedDockerArchive.PipedHead(directory, DateTimeOffset.UnixEpoch), cancellationToken).ConfigureAwait(false);
            await upload.Writer.FlushAsync(cancellationToken).ConfigureAwait(false);
            squashed = await ImageSquasher.SquashAsync(spec with { LayerStream = Stream.Null }, bytes, cancellationToken).ConfigureAwait(false);
            if (squashed.NewLayer is null)
            {
                // Only the config changed: no layer to pipe; the caller loads the config over the base's layers.
                await AbandonAsync(upload, stop, loading).ConfigureAwait(false);
                return (squashed, null, false);
            }
            if (await LoadPipe.FindAsync(engineTemp, directory, importsBefore, uploadStarted, loading, _settings.LoadPipeWait, cancellationToken).ConfigureAwait(false) is not { } pipePath)
            {
                // A load that ended already failed (its error is the engine's answer); else the engine unpacks
                // uploads somewhere LayerTool does not see (DOCKER_TMPDIR): stream the layer in the archive.
                if (loading.IsCompleted) await loading.ConfigureAwait(false);
                await AbandonAsync(upload, stop, loading).ConfigureAwait(false);
                squashed.Dispose();
                return null;
            }
            // Whether the engine has the image already (an earlier reproducible squash): a cancelled squash then
            // leaves it; else it removes what the load made. Asked alongside the upload's end, and answered before
            // the pipe opens: the engine cannot make the image before it has read the layer.
            var existing = _engine.TryInspectImageAsync(squashed.ImageId.ToString(), CancellationToken.None);
            await upload.Writer.WriteAsync(StreamedDockerArchive.PipedSuffix(squashed, squashed.BaseLayerCount, directory, DateTimeOffset.UnixEpoch),
                cancellationToken).ConfigureAwait(false);
            await upload.CompleteAsync().ConfigureAwait(false);
            sent = pipePath;

            // From here the engine will open the pipe and wait for a writer: it must get one, whatever happens
            // (EndAsync opens and closes it when this does not get that far).
            var existedBefore = await existing.ConfigureAwait(false) is not null;
            progress?.Report(new SquashProgress("load", 0, null));
            LayerDiffResult? again = null;
            Stream? pipe;
            try
            {
                pipe = await LoadPipe.OpenWriterAsync(pipePath, loading, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                released = true; // opened (and closed, when cancelled), or the load ended: the engine waits for nothing
            }
            if (pipe is not null)
            {
                try
                {
                    await using (pipe.ConfigureAwait(false))
                    {
                        again = await spec.WriteLayer(spec.BaseIndex, pipe, new LayerDiffOptions
                        {
                            ClampTime = spec.Timestamp,
                            TempDirectory = spec.TempDirectory,
                            ReopenContent = spec.ReopenContent,
                            HashWrittenContent = false,
                            HashLayer = false, // the engine checks the diffID of what it reads against the config
                        }, cancellationToken).ConfigureAwait(false);
                    }
                }
                catch (IOException) when (!cancellationToken.IsCancellationRequested)
                {
                    // The engine stopped reading (a broken pipe): its load's error says why, and is handled below.
                    await loading.ConfigureAwait(false);
                    throw;
                }
                // The pipe is closed: the engine has the whole layer.
                again.Dispose();
            }
            await loading.ConfigureAwait(false);
            var id = await LoadedIdAsync(squashed.ImageId.ToString(), ExpectedLayers(squashed), CancellationToken.None).ConfigureAwait(false);
            if (cancellationToken.IsCancellationRequested)
            {
                // Cancelled once the engine had the whole layer: undo the load (nothing was tagged yet).
                if (!existedBefore && id is not null) await _engine.RemoveImageAsync(id, CancellationToken.None).ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
            }
            // No second pass at all (the load ended without opening the pipe) is an engine that had the layer
            // already, from an earlier squash of the same image: it skips loading a layer it has.
            if (again is not null && again.Size != squashed.LayerSize)
            {
                // The second pass wrote other bytes (the layer directories changed), which the engine cannot have
                // taken for the layer (its diffID): squash again.
                squashed.Dispose();
                return null;
            }
            if (id is not null) return (squashed, id, false);
            // The engine loaded something else: squash again into a file and load a full archive, as LoadAsync does.
            squashed.Dispose();
            return (null, null, true);
        }
        catch (Exception e) when (e is EngineException or ArchiveUpload.ClosedException && !cancellationToken.IsCancellationRequested)
        {
            // The engine turned the archive down: squash again into a file and load a full archive, as LoadAsync does.
            await EndAsync(upload, stop, loading, sent, released).ConfigureAwait(false);
            squashed?.Dispose();
            return (null, null, true);
        }
        catch
        {
            await EndAsync(upload, stop, loading, sent, released).ConfigureAwait(false);
            squashed?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Ends a piped load that failed: an upload still going (no <paramref name="sentPipe"/> yet) is cut short; a
    /// complete one, whose pipe was closed early or never written, fails in the engine on its own (an empty or
    /// truncated layer, or its diffID). A pipe not <paramref name="released"/> yet is opened and closed, so the
    /// engine does not wait for it for ever.
    /// </summary>
    private static async Task EndAsync(ArchiveUpload upload, CancellationTokenSource stop, Task loading, string? sentPipe, bool released)
    {
        if (sentPipe is null)
        {
            await AbandonAsync(upload, stop, loading).ConfigureAwait(false);
            return;
        }
        try
        {
            if (!released && await LoadPipe.OpenWriterAsync(sentPipe, loading, CancellationToken.None).ConfigureAwait(false) is { } opened)
                await opened.DisposeAsync().ConfigureAwait(false);
            await loading.ConfigureAwait(false);
        }
        catch (Exception e) when (e is EngineException or OperationCanceledException or IOException or HttpRequestException)
        {
            // Expected: the engine refused what it read from the pipe.
        }
    }

    /// <summary>Starts the load request whose body is <paramref name="upload"/>'s; the task ends with the request
    /// (and a writer still writing then gets <see cref="ArchiveUpload.ClosedException"/>).</summary>
    private Task StartLoad(ArchiveUpload upload, CancellationToken requestToken) => Task.Run(async () =>
    {
        try
        {
            await _engine.LoadImageAsync(upload.Body, requestToken).ConfigureAwait(false);
        }
        finally
        {
            upload.RequestEnded();
        }
    }, CancellationToken.None);

    /// <summary>Cuts an upload short (the engine then loads nothing) and waits for the request to end.</summary>
    private static async Task AbandonAsync(ArchiveUpload upload, CancellationTokenSource stop, Task loading)
    {
        await upload.FailAsync(new OperationCanceledException("the squash did not finish; the upload is abandoned")).ConfigureAwait(false);
        await stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await loading.ConfigureAwait(false);
        }
        catch (Exception e) when (e is EngineException or OperationCanceledException or IOException or HttpRequestException)
        {
            // Expected: the request was cut short on purpose, or had failed already.
        }
    }

    /// <summary>Loads the result, partial archive first; returns the engine's image ID once its layers check out.</summary>
    private async Task<string> LoadAsync(SquashedImage squashed, EngineImage? baseImage, ImageStoreKind store, CancellationToken cancellationToken,
        bool tryPartial = true)
    {
        var expected = ExpectedLayers(squashed);
        if (tryPartial && baseImage is not null && store == ImageStoreKind.GraphDriver)
        {
            try
            {
                var id = await LoadArchiveAsync(squashed, new ImageWriteOptions
                {
                    Format = ImageArchiveFormat.DockerArchive,
                    OmitLayers = squashed.BaseLayerCount,
                    TemporaryDirectory = _settings.TempDirectory,
                }, squashed.ImageId.ToString(), expected, cancellationToken).ConfigureAwait(false);
                if (id is not null) return id;
            }
            catch (EngineException)
            {
                // The engine refused the partial archive: fall back to a full one below.
            }
        }

        ImageArchive? baseArchive = null;
        try
        {
            IImage full = squashed;
            if (baseImage is not null)
            {
                baseArchive = await OpenSaveAsync(baseImage.Id, cancellationToken).ConfigureAwait(false);
                full = Compose(squashed, baseArchive.GetImage());
            }
            var format = store == ImageStoreKind.Containerd ? ImageArchiveFormat.DockerOciArchive : ImageArchiveFormat.DockerArchive;
            var temporaryName = store == ImageStoreKind.Containerd
                ? ImageReference.Parse($"layertool-squash/{squashed.ImageId.Hex[..12]}:loading")
                : (ImageReference?)null;
            var result = await LoadArchiveAsync(full, new ImageWriteOptions
            {
                Format = format,
                Tags = temporaryName is { } t ? [t] : [],
                TemporaryDirectory = _settings.TempDirectory,
            }, temporaryName?.ToString() ?? squashed.ImageId.ToString(), expected, cancellationToken).ConfigureAwait(false);
            if (temporaryName is { } name)
            {
                // The containerd store names images by manifest digest; keep the ID, drop the temporary name.
                var loaded = await _engine.TryInspectImageAsync(name.ToString(), cancellationToken).ConfigureAwait(false);
                if (loaded is not null && result is not null)
                {
                    await _engine.TagImageAsync(loaded.Id, $"layertool-squash/{squashed.ImageId.Hex[..12]}:keep", cancellationToken).ConfigureAwait(false);
                    await _engine.RemoveImageAsync(name.ToString(), cancellationToken).ConfigureAwait(false);
                    result = loaded.Id;
                }
            }
            return result ?? throw new EngineException(
                $"the engine loaded the squashed image but its layers are not the expected ones ({string.Join(", ", expected)})");
        }
        finally
        {
            baseArchive?.Dispose();
        }
    }

    /// <summary>Writes an archive to a temp file, loads it, and returns the image ID if the engine now has
    /// <paramref name="lookup"/> with exactly the <paramref name="expected"/> layers (else null).</summary>
    private async Task<string?> LoadArchiveAsync(IImage image, ImageWriteOptions options, string lookup, IReadOnlyList<string> expected,
        CancellationToken cancellationToken)
    {
        // A docker-archive whose layers are files (the squash's new layer) is sent as it is assembled,
        // reading the layer in place: no second copy of the layer on disk, no second hash of it (measured
        // in docs/design/fast-path.md). The stream is seekable with a known length, so the body goes
        // out with a Content-Length: a pipe (3c1a10b, reverted) made the body chunked and was slower.
        if (ImageArchiveWriter.TryOpenDockerArchive(image, options) is { } direct)
        {
            await using (direct.ConfigureAwait(false))
            {
                await _engine.LoadImageAsync(direct, cancellationToken).ConfigureAwait(false);
            }
            return await LoadedIdAsync(lookup, expected, cancellationToken).ConfigureAwait(false);
        }

        var directory = _settings.TempDirectory ?? Path.GetTempPath();
        var path = Path.Combine(directory, $"layertool-load-{Guid.NewGuid():N}.tar");
        try
        {
            await ImageArchiveWriter.WriteAsync(path, image, options, cancellationToken).ConfigureAwait(false);
            var archive = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan | FileOptions.Asynchronous);
            await using (archive.ConfigureAwait(false))
            {
                await _engine.LoadImageAsync(archive, cancellationToken).ConfigureAwait(false);
            }
            return await LoadedIdAsync(lookup, expected, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>The layers a loaded squash must have: the base's and the new one.</summary>
    private static List<string> ExpectedLayers(SquashedImage squashed) => [.. squashed.Config.DiffIds.Select(d => d.ToString())];

    /// <summary>The engine's ID of <paramref name="lookup"/> if it now has exactly the <paramref name="expected"/> layers, else null.</summary>
    private async Task<string?> LoadedIdAsync(string lookup, IReadOnlyList<string> expected, CancellationToken cancellationToken)
    {
        var loaded = await _engine.TryInspectImageAsync(lookup, cancellationToken).ConfigureAwait(false);
        return loaded is not null && loaded.DiffIds.SequenceEqual(expected, StringComparer.Ordinal) ? loaded.Id : null;
    }

    private static async Task DisposeWhenOpenedAsync(Task<IFinalImageSource> opening)
    {
        try
        {
            (await opening.ConfigureAwait(false)).Dispose();
        }
#pragma warning disable CA1031 // The first failure is the one reported; this one only must not leak the source.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    private async Task<IFinalImageSource> OpenFinalAsync(EngineImage final, CancellationToken cancellationToken)
    {
        foreach (var factory in _settings.FinalImageSources)
        {
            if (await factory.TryOpenAsync(final, cancellationToken).ConfigureAwait(false) is { } source) return source;
        }
        return await ExportImageSource.OpenAsync(_engine, final, _settings.TempDirectory, cancellationToken).ConfigureAwait(false);
    }
}
