using System.Globalization;
using LayerTool.Docker;
using LayerTool.Docker.Images;
using LayerTool.Image;
using LayerTool.Image.Formats;
using LayerTool.Registry;

namespace LayerTool.Cli.Commands;

/// <summary>
/// The push of <c>layertool push</c>, shared by the verbs that push what they made (<c>build --push</c>, an engine
/// <c>squash --push</c>): an engine image is read from its <c>docker save</c>, an archive or layout from its file.
/// </summary>
internal static class RegistryPush
{
    /// <summary>Pushes the engine image <paramref name="image"/> (reference or ID) to <paramref name="target"/>.</summary>
    public static async Task<PushResult> PushEngineImageAsync(DockerConnection connection, string image, ImageReference target, RegistryCliOptions registry,
        long? chunkSize, CliContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        using var archive = await EngineImageArchive.OpenAsync(new DockerImageEngine(connection), image, context.TempDirectory, cancellationToken).ConfigureAwait(false);
        return await PushAsync(archive.GetImage(), target, registry, chunkSize, context, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Pushes the only image of a docker-archive or OCI layout (directory or tar).</summary>
    public static async Task<PushResult> PushArchiveAsync(string path, ImageReference target, RegistryCliOptions registry, long? chunkSize, CliContext context,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        using var archive = ImageArchive.Open(path, new ImageArchiveOptions { TemporaryDirectory = context.TempDirectory });
        return await PushAsync(archive.GetImage(), target, registry, chunkSize, context, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Pushes <paramref name="image"/> with the blob progress <paramref name="registry"/> asks for.</summary>
    public static async Task<PushResult> PushAsync(IImage image, ImageReference target, RegistryCliOptions registry, long? chunkSize, CliContext context,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(registry);
        var renderer = BlobProgressRenderer.Create(registry.Progress, context);
        using var client = new RegistryClient(registry.ToSettings(target.Registry, renderer) with { ChunkSize = chunkSize });
        try
        {
            return await new ImagePusher(client).PushAsync(image, target, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            renderer?.Done();
        }
    }

    /// <summary>The line a push ends with on stderr.</summary>
    public static string Summary(ImageReference target, PushResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        return string.Create(CultureInfo.InvariantCulture,
            $"pushed {target.FamiliarString}: {result.Uploaded} blobs uploaded ({Units.Bytes(result.UploadedBytes)}), {result.Existing} already there, {result.Mounted} mounted");
    }
}
