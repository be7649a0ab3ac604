using LayerTool.Docker.Images;
using LayerTool.Image;
using LayerTool.Image.Formats;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Content;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Layers.Index;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.Docker.Squash;

/// <summary>
/// The final image through the engine API: the filesystem from <c>docker export</c> of a created, never
/// started container (one pass, walk order), with the paths the engine's init layer shadows taken from
/// the image's own layers; the config and those layers from <c>docker save</c>.
/// </summary>
public sealed class ExportImageSource : IFinalImageSource
{
    private readonly IImageEngine _engine;
    private readonly EngineImage _image;
    private readonly ImageArchive _save;
    private readonly IReadOnlyList<OverlayEntry> _replacements;
    private readonly IReadOnlyList<Func<CancellationToken, Task<Stream>>> _layers;
    private readonly string? _tempDirectory;
    private string? _flattened;
    private ContentReopener? _reopener;

    private ExportImageSource(IImageEngine engine, EngineImage image, ImageArchive save, IReadOnlyList<OverlayEntry> replacements,
        IReadOnlyList<Func<CancellationToken, Task<Stream>>> layers, string? tempDirectory, LayerEntry? root)
    {
        Root = root;
        _engine = engine;
        _image = image;
        _save = save;
        _replacements = replacements;
        _layers = layers;
        _tempDirectory = tempDirectory;
        Image = save.GetImage();
    }

    public IImage Image { get; }

    /// <summary>An export is read once: a second pass would be a second export.</summary>
    public bool Rereadable => false;

    /// <summary>Unknown through the API.</summary>
    public string? EngineTempDirectory => null;

    /// <summary>The API gives no cheaper way to index the base than its save.</summary>
    public Task<(FsIndex Index, ImageConfig Config)?> TryIndexBaseAsync(EngineImage baseImage, string? tempDirectory, CancellationToken cancellationToken) =>
        Task.FromResult<(FsIndex, ImageConfig)?>(null);

    /// <summary>The root entry of the image's saved layers (an export has none of its own).</summary>
    public LayerEntry? Root { get; }

    public Task<LayerEntry?> FindRootAsync(CancellationToken cancellationToken) => Task.FromResult(Root);

    public static async Task<ExportImageSource> OpenAsync(IImageEngine engine, EngineImage image, string? tempDirectory, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(image);
        var save = await EngineImageArchive.OpenAsync(engine, image.Id, tempDirectory, cancellationToken).ConfigureAwait(false);
        try
        {
            var saved = save.GetImage();
            if (!saved.Config.DiffIds.Select(d => d.ToString()).SequenceEqual(image.DiffIds, StringComparer.Ordinal))
                throw new EngineException($"the save of image {image.Id} does not hold the layers the engine reports for it");
            var layers = saved.Layers.Select(l => (Func<CancellationToken, Task<Stream>>)(ct => Task.FromResult(l.Open(ct)))).ToList();
            var replacements = await InitPathOverlay.CollectFromLayersAsync(layers, InitPathOverlay.DefaultPaths, cancellationToken).ConfigureAwait(false);
            // An export has no root entry: the image's own comes from its saved layers (their first headers).
            var root = await RootEntry.FindAsync(layers, cancellationToken).ConfigureAwait(false);
            return new ExportImageSource(engine, image, save, replacements, layers, tempDirectory, root);
        }
        catch
        {
            save.Dispose();
            throw;
        }
    }

    public Task<LayerDiffResult> WriteLayerAsync(FsIndex baseIndex, Stream output, LayerDiffOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var withReopen = options with { ReopenContent = options.ReopenContent ?? ReopenAsync };
        if (_image.DiffIds.Count == 0) return WriteEmptyAsync(baseIndex, output, withReopen, cancellationToken);
        return _engine.ExportImageFilesystemAsync(_image.Id, async (stream, ct) =>
        {
            var reader = new LayerTarReader(stream, leaveOpen: true);
            await using (reader.ConfigureAwait(false))
            {
                var source = new InitPathOverlay(reader, InitPathOverlay.DefaultPaths, _replacements);
                return await LayerDiff.WriteAsync(baseIndex, source, output, withReopen, ct).ConfigureAwait(false);
            }
        }, cancellationToken);
    }

    /// <summary>An image without layers has an empty filesystem: no container is created (the engine could not export one).</summary>
    private static async Task<LayerDiffResult> WriteEmptyAsync(FsIndex baseIndex, Stream output, LayerDiffOptions options, CancellationToken cancellationToken)
    {
        var reader = new LayerTarReader(Stream.Null, leaveOpen: true, source: "the empty filesystem of an image without layers");
        await using (reader.ConfigureAwait(false))
            return await LayerDiff.WriteAsync(baseIndex, reader, output, options, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Re-reads a file of the image from its layers, flattened into a temp tar on first use (only for
    /// the rare hard link to a file the export already passed).</summary>
    private async Task<Stream> ReopenAsync(LayerPath path, CancellationToken cancellationToken)
    {
        if (_reopener is null)
        {
            var flattened = Path.Combine(_tempDirectory ?? Path.GetTempPath(), $"layertool-flat-{Guid.NewGuid():N}.tar");
            _flattened = flattened;
            var output = new FileStream(flattened, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
            await using (output.ConfigureAwait(false))
            {
                await LayerFlattener.FlattenAsync(_layers, output, cancellationToken, _tempDirectory).ConfigureAwait(false);
            }
            _reopener = ContentReopeners.FromTar(_ => Task.FromResult<Stream>(
                new FileStream(flattened, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan | FileOptions.Asynchronous)), _tempDirectory);
        }
        return await _reopener(path, cancellationToken).ConfigureAwait(false);
    }

    public void Dispose()
    {
        _save.Dispose();
        if (_flattened is not null) File.Delete(_flattened);
    }
}
