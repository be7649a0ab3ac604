using LayerTool.Docker.Images;
using LayerTool.Image;
using LayerTool.Image.Formats;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Layers.Index;
using LayerTool.Image.Squash;

namespace LayerTool.Docker.Squash;

/// <summary>Settings of <see cref="EngineSquashService"/>.</summary>
/// <param name="CacheDirectory">Where base indexes are cached (e.g. <c>~/.cache/layertool/index</c>).</param>
/// <param name="TempDirectory">Where layers and spills go; the system temp directory when null.</param>
/// <param name="Clock">The time of a non-reproducible squash; the system clock when null.</param>
public sealed record EngineSquashSettings(string CacheDirectory, string? TempDirectory = null, TimeProvider? Clock = null)
{
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
/// <see cref="ISquashService"/> against an engine: resolve → <see cref="ImageSquasher"/> → load. The engine is the
/// image source (<see cref="EngineImages"/>: the final image through the overlay2 fast path or an export, the
/// base's index from the cache, its layer directories or its save) and the sink (<see cref="EngineLoader"/>: the
/// load routes and the check of what the engine loaded); the squash itself, its verification included, is the
/// pure core's. Nothing is tagged before the loaded image's layers check out.
/// </summary>
public sealed class EngineSquashService : ISquashService
{
    private readonly IImageEngine _engine;
    private readonly EngineSquashSettings _settings;
    private readonly EngineImages _images;
    private readonly EngineLoader _loader;

    public EngineSquashService(IImageEngine engine, EngineSquashSettings settings)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(settings);
        _engine = engine;
        _settings = settings;
        _images = new EngineImages(engine, new BaseIndexCache(settings.CacheDirectory), settings.TempDirectory);
        _loader = new EngineLoader(engine, settings);
    }

    public async Task<SquashResult> SquashAsync(SquashRequest request, IProgress<SquashProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var imageRef = EngineReference(request.Image, "IMAGE");
        var baseRef = request.Base is null ? null : EngineReference(request.Base, "BASE");
        var tags = request.Tags.Select(ParseTag).ToList();
        if (request.OutputFormat is not ("docker" or "oci"))
            throw new ArgumentException($"unknown output format '{request.OutputFormat}' (docker or oci)", nameof(request));

        // Three independent round trips to the engine (/info is the slowest), sent side by side.
        var finalTask = _engine.TryInspectImageAsync(imageRef, cancellationToken);
        var baseTask = baseRef is null ? Task.FromResult<EngineImage?>(null) : _engine.TryInspectImageAsync(baseRef, cancellationToken);
        var storeTask = _engine.GetStoreKindAsync(cancellationToken);
        await Task.WhenAll(finalTask, baseTask, storeTask).ConfigureAwait(false);
        var final = await finalTask.ConfigureAwait(false) ?? throw new EngineException($"no such image: {imageRef}");
        var baseImage = await baseTask.ConfigureAwait(false);
        if (baseRef is not null && baseImage is null) throw new EngineException($"no such image: {baseRef} (the base)");
        var store = await storeTask.ConfigureAwait(false);

        var (opening, method) = _images.OpenFinal(final, baseImage, store, request.FastPath, cancellationToken);
        progress?.Report(new SquashProgress(method, 0, null));
        progress?.Report(new SquashProgress(opening.IsCompleted ? "base" : "read", 0, null));
        using var baseSave = baseImage is null ? null : _images.SaveOf(baseImage);
        // The final image is opened (an export takes a save first) while the base is indexed.
        FsIndex baseIndex = FsIndex.Empty;
        IImage? baseForSquash = null;
        try
        {
            if (baseImage is not null)
            {
                var (index, config) = await _images.IndexBaseAsync(baseImage, opening.IsCompletedSuccessfully ? opening.Result : null, baseSave!, cancellationToken)
                    .ConfigureAwait(false);
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
        // The base index is this method's from here (an on-disk index holds a file open until disposed).
        using var ownedBaseIndex = baseIndex;
        var finalRoot = await source.FindRootAsync(cancellationToken).ConfigureAwait(false);
        var spec = new SquashSpec
        {
            Final = source.Image,
            Base = baseForSquash,
            BaseIndex = baseIndex,
            BaseName = baseRef,
            BaseDigest = BaseDigest(baseImage),
            Message = request.Message,
            CreatedBy = baseRef is null ? "layertool squash --onto scratch" : $"layertool squash --onto {baseRef}",
            Timestamp = request.Timestamp,
            Now = request.Now ?? (_settings.Clock ?? TimeProvider.System).GetUtcNow(),
            TempDirectory = _settings.TempDirectory,
            WriteLayer = source.WriteLayerAsync,
            // The base's root is not read through the engine: only a squash onto scratch writes the image's.
            Root = RootEntry.ToWrite(finalRoot, ontoScratch: baseRef is null, baseKnown: false, null),
        };
        // An export is read once, its size known; layer directories are read as needed.
        long? totalBytes = source.Rereadable ? null : final.Size;
        var bytes = progress is null ? null : new Progress<long>(b => progress.Report(new SquashProgress("squash", b, totalBytes)));
        // A final image that can be read twice is loaded while the layer is written, with no layer file at all.
        SquashedImage? streamed = null;
        string? loadedWhileWriting = null;
        var partialRefused = false;
        if (request.Load && request.OutputPath is null && store == ImageStoreKind.GraphDriver)
        {
            (streamed, loadedWhileWriting, partialRefused) = await _loader.SquashWhileLoadingAsync(spec, source, bytes, progress, cancellationToken)
                .ConfigureAwait(false);
        }
        var squashedNow = streamed ?? await ImageSquasher.SquashAsync(spec, bytes, cancellationToken).ConfigureAwait(false);
        using var squashed = squashedNow;

        if (request.OutputPath is not null)
        {
            progress?.Report(new SquashProgress("write", 0, null));
            await WriteOutputAsync(request, squashed, baseSave, tags, cancellationToken).ConfigureAwait(false);
        }

        var imageId = squashed.ImageId.ToString();
        if (request.Load)
        {
            progress?.Report(new SquashProgress("load", 0, null));
            imageId = loadedWhileWriting ?? await _loader.LoadAsync(squashed, baseSave, store, !partialRefused,
                cancellationToken).ConfigureAwait(false);
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
            squashed.Warnings)
        {
            Tags = request.Load ? request.Tags : [],
            Method = method,
        };
    }

    /// <summary>The engine's name for an image of the request; this squasher reads engine images only.</summary>
    private static string EngineReference(SquashSource source, string what) => source is EngineSquashSource engine
        ? engine.Reference
        : throw new ArgumentException($"the engine squash reads {what} from the engine, not from {source}", nameof(source));

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

    private async Task WriteOutputAsync(SquashRequest request, SquashedImage squashed, BaseSave? baseSave, IReadOnlyList<ImageReference> tags,
        CancellationToken cancellationToken)
    {
        IImage full = baseSave is null
            ? squashed
            : EngineLoader.Compose(squashed, (await baseSave.OpenAsync(cancellationToken).ConfigureAwait(false)).GetImage());
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
}
