using LayerTool.Image;
using LayerTool.Image.Formats;
using LayerTool.Image.Squash;

namespace LayerTool.Registry;

/// <summary>Where an image of a squash without an engine comes from.</summary>
public abstract record SquashSource
{
    /// <summary>The prefix that names a registry reference where a path could stand (<c>--input registry://REF</c>).</summary>
    public const string RegistryScheme = "registry://";

    /// <summary>Whether <paramref name="text"/> is <c>registry://REF</c>.</summary>
    public static bool IsRegistry(string? text) => text?.StartsWith(RegistryScheme, StringComparison.Ordinal) == true;
}

/// <summary>An image in a docker-archive or OCI layout (directory or tar).</summary>
/// <param name="Path">The archive or layout.</param>
/// <param name="Name">A name, tag or ID inside it; null for its only image.</param>
public sealed record ArchiveSquashSource(string Path, string? Name) : SquashSource;

/// <summary>An image in a registry, pulled into the blob cache (each blob a verified file) and read from there.</summary>
/// <param name="Reference">The image.</param>
public sealed record RegistrySquashSource(ImageReference Reference) : SquashSource;

/// <summary>A squash with no engine: images from archives, OCI layouts or registries; the result to a file and/or a registry.</summary>
/// <param name="Final">IMAGE.</param>
/// <param name="Base">BASE, or null for scratch.</param>
public sealed record RegistrySquashRequest(SquashSource Final, SquashSource? Base)
{
    /// <summary>Write the result here (docker-archive, or OCI layout with <see cref="OutputFormat"/> <c>oci</c>); null: no file.</summary>
    public string? OutputPath { get; init; }

    /// <summary><c>docker</c> or <c>oci</c>.</summary>
    public string OutputFormat { get; init; } = "docker";

    /// <summary>Names written into the output file.</summary>
    public IReadOnlyList<string> Tags { get; init; } = [];

    /// <summary>Push the result to these references (the first uploads, the others find the blobs there); none: no push.</summary>
    public IReadOnlyList<ImageReference> Push { get; init; } = [];

    /// <summary>The squash history entry's comment.</summary>
    public string? Message { get; init; }

    /// <summary>Reproducible mode's clamp time.</summary>
    public DateTimeOffset? Timestamp { get; init; }

    /// <summary>The squash's time otherwise (null: now).</summary>
    public DateTimeOffset? Now { get; init; }

    /// <summary>Where base filesystem indexes are cached (null: no cache).</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>Where temp files go (null: the system's temp directory).</summary>
    public string? TempDirectory { get; init; }
}

/// <summary>What a squash without an engine produced.</summary>
/// <param name="ImageId">The result's config digest (its image ID in the graph-driver store).</param>
/// <param name="LayerDiffId">The new layer's diff ID; empty when the image's filesystem equals the base's.</param>
/// <param name="LayersBefore">IMAGE's layers.</param>
/// <param name="LayersAfter">The result's layers.</param>
/// <param name="BytesBefore">IMAGE's stored layer bytes (as its descriptors give them).</param>
/// <param name="BytesAfter">BASE's stored bytes plus the new layer's.</param>
/// <param name="LayerBytes">The new layer's uncompressed size.</param>
/// <param name="Warnings">Things the user should know.</param>
/// <param name="Pushed">Each push done, in the order of <see cref="RegistrySquashRequest.Push"/>.</param>
public sealed record RegistrySquashResult(
    string ImageId,
    string LayerDiffId,
    int LayersBefore,
    int LayersAfter,
    long BytesBefore,
    long BytesAfter,
    long LayerBytes,
    IReadOnlyList<string> Warnings,
    IReadOnlyList<(ImageReference Target, PushResult Result)> Pushed);

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
    public async Task<RegistrySquashResult> SquashAsync(RegistrySquashRequest request, IProgress<long>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(client);
        if (request.OutputPath is null && request.Push.Count == 0)
        {
            throw new ArgumentException("the result must go somewhere: an output path or a push", nameof(request));
        }

        var tags = ArchiveSquasher.ParseTags(request.Tags);
        foreach (var source in new[] { request.Final, request.Base }.OfType<ArchiveSquashSource>())
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
            var (final, _, _) = await OpenAsync(request.Final, archives, request.TempDirectory, cancellationToken).ConfigureAwait(false);
            IImage? baseImage = null;
            string? baseName = null;
            Digest? baseDigest = null;
            if (request.Base is { } b)
            {
                (baseImage, baseName, baseDigest) = await OpenAsync(b, archives, request.TempDirectory, cancellationToken).ConfigureAwait(false);
            }

            using var squashed = await ArchiveSquasher.SquashImagesAsync(new ImageSquashInput(final, baseImage)
            {
                BaseName = baseName,
                BaseDigest = baseDigest,
                Message = request.Message,
                Timestamp = request.Timestamp,
                Now = request.Now ?? DateTimeOffset.UtcNow,
                CacheDirectory = request.CacheDirectory,
                TempDirectory = request.TempDirectory,
            }, progress, cancellationToken).ConfigureAwait(false);

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
            return new RegistrySquashResult(
                squashed.ImageId.ToString(),
                squashed.NewLayer?.DiffId.ToString() ?? "",
                final.Layers.Count,
                squashed.Layers.Count,
                SizeOf(final.Layers),
                baseBytes + squashed.LayerSize,
                squashed.LayerSize,
                squashed.Warnings,
                pushed);
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
