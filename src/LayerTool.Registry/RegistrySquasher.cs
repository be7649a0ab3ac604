using LayerTool.Image;
using LayerTool.Image.Formats;
using LayerTool.Image.Squash;

namespace LayerTool.Registry;

/// <summary>
/// <c>layertool squash --input registry://REF</c> and <c>squash --push</c>: squashes with no engine where either
/// image may come from a registry, and delivers the verified result to a file, a registry, or both.
/// A registry image is pulled into the blob cache first (layers in parallel, each blob streamed into its own
/// file, verified and renamed into place: nothing is buffered in memory), then read like an archive: the base's
/// filesystem index from its layers (cached by image ID), the image's layers merged as they stream. A push
/// sends the new layer (gzip-compressed into the cache on the way) and finds the base's layers already in the
/// registry (HEAD) or mounts them from the repository they were pulled from.
/// </summary>
public sealed class RegistrySquasher(RegistryClient client)
{
    public async Task<SquashResult> SquashAsync(SquashRequest request, IProgress<long>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(client);
        if (request.OutputPath is null && request.Push.Count == 0)
        {
            throw new ArgumentException("the result must go somewhere: an output path or a push", nameof(request));
        }

        var tags = ArchiveSquasher.ParseTags(request.Tags);
        foreach (var source in new[] { request.Image, request.Base }.OfType<ArchiveSquashSource>())
        {
            // The result replaces the output path once complete: were it the input, the input would be gone.
            if (request.OutputPath is not null && FileIdentity.Same(request.OutputPath, source.Path))
            {
                throw new IOException($"the output '{request.OutputPath}' is the input '{source.Path}' (the same file): write the result elsewhere");
            }
        }

        var archives = new List<ImageArchive>();
        try
        {
            // The image first, then the base: a registry image pulls its layers in parallel.
            var (final, _, _) = await OpenAsync(request.Image, archives, request.TempDirectory, cancellationToken).ConfigureAwait(false);
            IImage? baseImage = null;
            string? baseName = null;
            Digest? baseDigest = null;
            if (request.Base is { } b)
            {
                (baseImage, baseName, baseDigest) = await OpenAsync(b, archives, request.TempDirectory, cancellationToken).ConfigureAwait(false);
            }

            using var squashed = await ArchiveSquasher.SquashImagesAsync(final, baseImage, baseName, baseDigest, request, progress, cancellationToken).ConfigureAwait(false);

            // Every push first: a file written is the last step, so a push that fails leaves no output behind.
            var pushed = new List<(ImageReference, PushResult)>();
            foreach (var target in request.Push)
            {
                pushed.Add((target, await new ImagePusher(client).PushAsync(squashed, target, cancellationToken).ConfigureAwait(false)));
            }

            if (request.OutputPath is not null)
            {
                await ArchiveSquasher.WriteAsync(squashed, request.OutputPath, request.OutputFormat, tags, request.Timestamp, request.TempDirectory, cancellationToken)
                    .ConfigureAwait(false);
            }

            var baseBytes = baseImage is null ? 0 : SizeOf(baseImage.Layers);
            return new SquashResult(
                squashed.ImageId.ToString(),
                squashed.NewLayer?.DiffId.ToString() ?? "",
                final.Layers.Count,
                squashed.Layers.Count,
                SizeOf(final.Layers),
                baseBytes + squashed.LayerSize,
                squashed.LayerSize,
                squashed.Warnings)
            {
                Pushed = pushed,
            };
        }
        finally
        {
            foreach (var archive in archives)
            {
                archive.Dispose();
            }
        }
    }

    /// <summary>The image a source names, the name it goes by in the result's base labels, and its digest for them.</summary>
    private async Task<(IImage Image, string Name, Digest Digest)> OpenAsync(SquashSource source, List<ImageArchive> archives, string? tempDirectory,
        CancellationToken cancellationToken)
    {
        switch (source)
        {
            case RegistrySquashSource registry:
                var pulled = await new ImagePuller(client).PullAsync(registry.Reference, null, cancellationToken).ConfigureAwait(false);
                return (pulled, registry.Reference.FamiliarString, pulled.ManifestDigest);
            case ArchiveSquashSource archive:
                var opened = ImageArchive.Open(archive.Path, new ImageArchiveOptions { TemporaryDirectory = tempDirectory, Platform = client.Settings.Platform });
                archives.Add(opened);
                var image = opened.GetImage(archive.Name);
                return (image, archive.Name ?? image.ToString(), image.ManifestDescriptor?.Digest ?? image.Config.Digest);
            default:
                throw new ArgumentException($"unknown squash source {source}", nameof(source));
        }
    }

    private static long SizeOf(IEnumerable<ILayer> layers) => layers.Sum(l => l.Descriptor?.Size ?? 0);
}
