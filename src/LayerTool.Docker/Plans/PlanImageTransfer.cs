using LayerTool.Docker.Dind;
using LayerTool.Docker.Images;
using LayerTool.Image;
using LayerTool.Image.Formats;

namespace LayerTool.Docker.Plans;

/// <summary>What a transfer sent.</summary>
/// <param name="LayersSent">Layers that travelled.</param>
/// <param name="LayersSkipped">Layers the target had already (listed in the archive, not sent).</param>
/// <param name="Full">True when the whole image travelled (a fallback, or a target with none of its layers).</param>
public sealed record PlanTransferResult(int LayersSent, int LayersSkipped, bool Full);

/// <summary>
/// Moves one image between two engines, sending only the layers the target lacks: the target's images that the run
/// knows (its bases, what it built or received) tell which bottom layers it has; the source's <c>docker save</c> is
/// read once (the API has no "save only these layers"), and a partial docker-archive (the squash's own delivery:
/// <see cref="ImageWriteOptions.OmitLayers"/>) that lists those layers without their files goes into the target's
/// load, which skips layers whose chain it has. The loaded image is checked (same ID, same layers); a target that
/// refuses the partial archive, or a containerd-store target, gets the whole save streamed instead
/// (<see cref="ImageTransfer"/>).
/// </summary>
public static class PlanImageTransfer
{
    /// <param name="source">Where the image is.</param>
    /// <param name="target">Where it must go.</param>
    /// <param name="imageId">The image (its ID).</param>
    /// <param name="tags">Names to give it on the target (may be empty).</param>
    /// <param name="known">References or IDs of images the target may hold: the candidates for shared bottom layers.</param>
    /// <param name="tempDirectory">Where the save is spilled; null: the system's temp directory.</param>
    /// <param name="cancellationToken">Cancels the transfer.</param>
    public static async Task<PlanTransferResult> CopyAsync(DockerConnection source, DockerConnection target, string imageId, IReadOnlyList<string> tags,
        IEnumerable<string> known, string? tempDirectory, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(imageId);
        ArgumentNullException.ThrowIfNull(tags);
        ArgumentNullException.ThrowIfNull(known);
        var sourceEngine = new DockerImageEngine(source);
        var targetEngine = new DockerImageEngine(target);
        var image = await sourceEngine.TryInspectImageAsync(imageId, cancellationToken).ConfigureAwait(false)
                    ?? throw new EngineException($"{source.EndpointDescription} has no image {imageId} to hand over");
        if (await targetEngine.TryInspectImageAsync(imageId, cancellationToken).ConfigureAwait(false) is not null)
        {
            await TagAsync(targetEngine, imageId, tags, cancellationToken).ConfigureAwait(false);
            return new PlanTransferResult(0, image.DiffIds.Count, false);
        }

        var shared = 0;
        foreach (var candidate in known.Distinct(StringComparer.Ordinal))
        {
            var there = await targetEngine.TryInspectImageAsync(candidate, cancellationToken).ConfigureAwait(false);
            if (there is null) continue;
            var common = 0;
            while (common < there.DiffIds.Count && common < image.DiffIds.Count && there.DiffIds[common] == image.DiffIds[common]) common++;
            shared = Math.Max(shared, common);
        }

        if (shared > 0 && await targetEngine.GetStoreKindAsync(cancellationToken).ConfigureAwait(false) == ImageStoreKind.GraphDriver)
        {
            try
            {
                if (await CopyPartialAsync(sourceEngine, targetEngine, image, shared, tags, tempDirectory, cancellationToken).ConfigureAwait(false))
                    return new PlanTransferResult(image.DiffIds.Count - shared, shared, false);
            }
            catch (EngineException) when (!cancellationToken.IsCancellationRequested)
            {
                // The target refused the partial archive: the whole image below.
            }
        }

        var full = await ImageTransfer.CopyAsync(source, target, [imageId], cancellationToken).ConfigureAwait(false);
        if (full.MissingAtSource.Count > 0) throw new EngineException($"{source.EndpointDescription} has no image {imageId} to hand over");
        await TagAsync(targetEngine, imageId, tags, cancellationToken).ConfigureAwait(false);
        return new PlanTransferResult(image.DiffIds.Count, 0, true);
    }

    private static async Task<bool> CopyPartialAsync(DockerImageEngine source, DockerImageEngine target, EngineImage image, int omit, IReadOnlyList<string> tags,
        string? tempDirectory, CancellationToken cancellationToken)
    {
        using var archive = await EngineImageArchive.OpenAsync(source, image.Id, tempDirectory, cancellationToken).ConfigureAwait(false);
        var directory = tempDirectory ?? Path.GetTempPath();
        var path = Path.Combine(directory, $"layertool-handoff-{Guid.NewGuid():N}.tar");
        try
        {
            await ImageArchiveWriter.WriteAsync(path, archive.GetImage(), new ImageWriteOptions
            {
                Format = ImageArchiveFormat.DockerArchive,
                OmitLayers = omit,
                Tags = [.. tags.Select(ImageReference.Parse)],
                TemporaryDirectory = directory,
            }, cancellationToken).ConfigureAwait(false);
            var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan | FileOptions.Asynchronous);
            await using (stream.ConfigureAwait(false))
            {
                await target.LoadImageAsync(stream, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            File.Delete(path);
        }
        var loaded = await target.TryInspectImageAsync(image.Id, cancellationToken).ConfigureAwait(false);
        return loaded is not null && loaded.DiffIds.SequenceEqual(image.DiffIds, StringComparer.Ordinal);
    }

    private static async Task TagAsync(DockerImageEngine engine, string imageId, IReadOnlyList<string> tags, CancellationToken cancellationToken)
    {
        foreach (var tag in tags) await engine.TagImageAsync(imageId, tag, cancellationToken).ConfigureAwait(false);
    }
}
