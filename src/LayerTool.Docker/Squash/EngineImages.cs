using LayerTool.Docker.Images;
using LayerTool.Docker.Overlay2;
using LayerTool.Image;
using LayerTool.Image.Formats;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Index;
using LayerTool.Image.Squash;

namespace LayerTool.Docker.Squash;

/// <summary>
/// The engine as the squash's image source: the one way an engine image is opened for a squash (the overlay2
/// fast path where it applies, else the export), and the one way a base is indexed (the cache, else the fast
/// path's layer directories, else the base's save).
/// </summary>
internal sealed class EngineImages(IImageEngine engine, BaseIndexCache cache, string? tempDirectory)
{
    /// <summary>Opens <paramref name="final"/>; returns the source and, for <c>--verbose</c>, how it reads the image.
    /// The export source takes a save of the image first, so the caller may index the base meanwhile.</summary>
    public (Task<IFinalImageSource> Opening, string Method) OpenFinal(EngineImage final, EngineImage? baseImage, ImageStoreKind store, bool fastPath,
        CancellationToken cancellationToken)
    {
        string? reason = "disabled (--no-fast-path)";
        if (fastPath && store != ImageStoreKind.GraphDriver) reason = "the engine uses the containerd image store";
        else if (fastPath && Overlay2Squash.TryCreate(final, baseImage, out reason) is { } fast)
            return (Task.FromResult<IFinalImageSource>(fast), "fast path (overlay2 layer directories)");
        return (OpenExportAsync(final, cancellationToken), $"engine API (no fast path: {reason})");
    }

    private async Task<IFinalImageSource> OpenExportAsync(EngineImage final, CancellationToken cancellationToken) =>
        await ExportImageSource.OpenAsync(engine, final, tempDirectory, cancellationToken).ConfigureAwait(false);

    /// <summary>The base's index and config: from the cache, else through <paramref name="source"/>, else from the base's save.</summary>
    public async Task<(FsIndex Index, ImageConfig Config)> IndexBaseAsync(EngineImage baseImage, IFinalImageSource? source, BaseSave save,
        CancellationToken cancellationToken)
    {
        if (cache.TryGet(baseImage.Id) is { } cached)
        {
            if (cached.Config.DiffIds.Select(d => d.ToString()).SequenceEqual(baseImage.DiffIds)) return cached;
            cached.Index.Dispose();
        }
        if (source is not null && await source.TryIndexBaseAsync(baseImage, tempDirectory, cancellationToken).ConfigureAwait(false) is { } direct)
        {
            cache.TryPut(baseImage.Id, direct.Index, direct.Config);
            return direct;
        }
        var saved = (await save.OpenAsync(cancellationToken).ConfigureAwait(false)).GetImage();
        var index = await FsIndex.FromLayersOnDiskAsync(
            [.. saved.Layers.Select(l => (Func<CancellationToken, Task<Stream>>)(ct => Task.FromResult(l.Open(ct))))], tempDirectory, cancellationToken)
            .ConfigureAwait(false);
        cache.TryPut(baseImage.Id, index, saved.Config);
        return (index, saved.Config);
    }

    /// <summary>The base's save, taken once per squash when something needs the base's layer tars.</summary>
    public BaseSave SaveOf(EngineImage baseImage) => new(engine, baseImage.Id, tempDirectory);
}

/// <summary>
/// A base's <c>docker save</c>, taken at most once per squash whoever asks first (the base index on a cold cache,
/// an output file, a full-archive load), and removed when the squash ends.
/// </summary>
internal sealed class BaseSave(IImageEngine engine, string imageId, string? tempDirectory) : IDisposable
{
    private Task<ImageArchive>? _opening;

    /// <summary>The save, taken by the first caller.</summary>
    public Task<ImageArchive> OpenAsync(CancellationToken cancellationToken) =>
        _opening ??= EngineImageArchive.OpenAsync(engine, imageId, tempDirectory, cancellationToken);

    public void Dispose()
    {
        // A save still being taken (a squash cancelled meanwhile) is removed once it is there.
        _opening?.ContinueWith(t =>
        {
            if (t.IsCompletedSuccessfully) t.Result.Dispose();
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }
}
