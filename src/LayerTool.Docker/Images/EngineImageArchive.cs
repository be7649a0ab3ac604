using LayerTool.Image.Formats;

namespace LayerTool.Docker.Images;

/// <summary>An engine image as an <see cref="ImageArchive"/>: its save, spilled to a temp file (deleted on dispose).</summary>
public static class EngineImageArchive
{
    public static async Task<ImageArchive> OpenAsync(IImageEngine engine, string reference, string? tempDirectory, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(engine);
        var image = await engine.TryInspectImageAsync(reference, cancellationToken).ConfigureAwait(false)
                    ?? throw new EngineException($"no such image: {reference}");
        var stream = await engine.SaveImageAsync(image.Id, cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            try
            {
                return await ImageArchive.OpenAsync(stream, $"docker save {reference}", new ImageArchiveOptions { TemporaryDirectory = tempDirectory },
                    cancellationToken).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                throw new EngineException($"cannot read the save of image {reference}: {e.Message}", e);
            }
        }
    }
}
