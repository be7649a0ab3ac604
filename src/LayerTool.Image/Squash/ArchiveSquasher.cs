using LayerTool.Image.Formats;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Layers.Index;

namespace LayerTool.Image.Squash;

/// <summary>Squashes an image from an archive onto a base from an archive, into a new archive.</summary>
public static class ArchiveSquasher
{
    /// <summary>
    /// Squashes an image from an archive or layout onto a base from one (the same or another; scratch when
    /// <see cref="SquashRequest.Base"/> is null) into <see cref="SquashRequest.OutputPath"/>, with no engine.
    /// </summary>
    public static async Task<SquashResult> SquashAsync(SquashRequest request, IProgress<long>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Image is not ArchiveSquashSource image || request.Base is not (null or ArchiveSquashSource))
            throw new ArgumentException("a squash without an engine or a registry reads archives or layouts only", nameof(request));
        var outputPath = request.OutputPath ?? throw new ArgumentException("a squash without an engine writes an output file", nameof(request));
        var baseSource = request.Base as ArchiveSquashSource;
        var tags = ParseTags(request.Tags);
        var options = new ImageArchiveOptions { TemporaryDirectory = request.TempDirectory };
        foreach (var source in new[] { image.Path, baseSource?.Path }.OfType<string>())
        {
            // The result replaces the output path once complete: were it the input, the input would be gone.
            if (FileIdentity.Same(outputPath, source))
                throw new IOException($"the output '{outputPath}' is the input '{source}' (the same file): write the result elsewhere");
        }
        using var input = ImageArchive.Open(image.Path, options);
        var sameArchive = baseSource is not null && string.Equals(Path.GetFullPath(baseSource.Path), Path.GetFullPath(image.Path), StringComparison.Ordinal);
        using var baseInput = baseSource is null || sameArchive ? null : ImageArchive.Open(baseSource.Path, options);
        var final = input.GetImage(image.Name);
        ArchiveImage? baseImage = baseSource is null ? null : (baseInput ?? input).GetImage(baseSource.Name);

        using var squashed = await SquashImagesAsync(final, baseImage, baseSource?.Name ?? baseImage?.ToString(),
            baseImage?.ManifestDescriptor?.Digest ?? baseImage?.Config.Digest, request, progress, cancellationToken).ConfigureAwait(false);

        var written = await WriteAsync(squashed, outputPath, request.OutputFormat, tags, request.Timestamp, request.TempDirectory, cancellationToken).ConfigureAwait(false);

        var before = SizeOf(final.Layers);
        var baseBytes = baseImage is null ? 0 : SizeOf(baseImage.Layers);
        return new SquashResult(
            written.ImageId.ToString(),
            squashed.NewLayer?.DiffId.ToString() ?? "",
            final.Layers.Count,
            squashed.Layers.Count,
            before,
            baseBytes + squashed.LayerSize,
            squashed.LayerSize,
            squashed.Warnings);
    }

    /// <summary>
    /// Squashes <paramref name="final"/> onto <paramref name="baseImage"/> (scratch when null) with no engine, from images
    /// read anywhere (archives, OCI layouts, a registry): the base's filesystem index is built from its layers (or taken
    /// from the cache by its image ID), the final image's layers are merged as they stream. <paramref name="request"/>
    /// gives the message, times and directories. The caller delivers the verified result and disposes it.
    /// </summary>
    /// <param name="final">IMAGE, opened.</param>
    /// <param name="baseImage">BASE, opened; null for scratch.</param>
    /// <param name="baseName">BASE as the user named it (history entry, OCI base-name label).</param>
    /// <param name="baseDigest">BASE's digest for the OCI base-digest label (a manifest digest when known, else its image ID).</param>
    /// <param name="request">The squash's options.</param>
    /// <param name="progress">Bytes of the final filesystem read so far.</param>
    /// <param name="cancellationToken">Cancels the squash.</param>
    public static async Task<SquashedImage> SquashImagesAsync(IImage final, IImage? baseImage, string? baseName, Digest? baseDigest, SquashRequest request,
        IProgress<long>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(final);
        ArgumentNullException.ThrowIfNull(request);
        using var baseIndex = baseImage is null ? FsIndex.Empty : await BaseIndexAsync(baseImage, request.CacheDirectory, request.TempDirectory, cancellationToken).ConfigureAwait(false);
        var finalLayers = final.Layers.Select(Opener).ToList();
        var finalRoot = await RootEntry.FindAsync(finalLayers, cancellationToken).ConfigureAwait(false);
        var baseRoot = baseImage is null ? null : await RootEntry.FindAsync(baseImage.Layers.Select(Opener), cancellationToken).ConfigureAwait(false);
        return await ImageSquasher.SquashAsync(new SquashSpec
        {
            Final = final,
            Base = baseImage,
            BaseIndex = baseIndex,
            BaseName = baseName,
            BaseDigest = baseDigest,
            Message = request.Message,
            CreatedBy = baseImage is null ? "layertool squash --onto scratch" : $"layertool squash --onto {baseName ?? baseImage.Config.Digest.ToString()}",
            Timestamp = request.Timestamp,
            Now = request.Now ?? DateTimeOffset.UtcNow,
            TempDirectory = request.TempDirectory,
            Root = RootEntry.ToWrite(finalRoot, ontoScratch: baseImage is null, baseKnown: true, baseRoot),
            WriteLayer = (index, output, diffOptions, ct) => LayerDiff.WriteFromLayersAsync(index, finalLayers, output, diffOptions, ct),
        }, progress, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The result's tags, checked: a tag may not hold a digest.</summary>
    public static IReadOnlyList<ImageReference> ParseTags(IEnumerable<string> tags)
    {
        ArgumentNullException.ThrowIfNull(tags);
        return [.. tags.Select(t => ImageReference.TryParse(t, out var r, out var error) && r.Digest is null
            ? r : throw new ImageFormatException($"invalid tag '{t}': {error ?? "a tag cannot hold a digest"}"))];
    }

    /// <summary>
    /// Writes a squash result to <paramref name="path"/>: a docker-archive (<c>docker</c>) or an OCI layout
    /// (<c>oci</c>: a directory, or a tar when the path ends in <c>.tar</c>), replaced only once complete.
    /// </summary>
    public static Task<ImageWriteResult> WriteAsync(IImage squashed, string path, string format, IReadOnlyList<ImageReference> tags, DateTimeOffset? timestamp,
        string? tempDirectory, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(path);
        var oci = format switch
        {
            "oci" => true,
            "docker" => false,
            _ => throw new ImageFormatException($"unknown output format '{format}' (docker or oci)"),
        };
        return ImageArchiveWriter.WriteAsync(path, squashed, new ImageWriteOptions
        {
            Format = oci ? ImageArchiveFormat.OciLayout : ImageArchiveFormat.DockerArchive,
            AsDirectory = oci && !path.EndsWith(".tar", StringComparison.OrdinalIgnoreCase),
            Tags = tags,
            TemporaryDirectory = tempDirectory,
            ModificationTime = timestamp ?? DateTimeOffset.UnixEpoch,
        }, cancellationToken);
    }

    private static long SizeOf(IEnumerable<ILayer> layers) => layers.Sum(l => l.Descriptor?.Size ?? 0);

    private static Func<CancellationToken, Task<Stream>> Opener(ILayer layer) => ct => Task.FromResult(layer.Open(ct));

    private static async Task<FsIndex> BaseIndexAsync(IImage baseImage, string? cacheDirectory, string? tempDirectory, CancellationToken cancellationToken)
    {
        var cache = cacheDirectory is null ? null : new BaseIndexCache(cacheDirectory);
        var id = baseImage.Config.Digest.ToString();
        if (cache?.TryGet(id) is { } hit) return hit.Index;
        var index = await FsIndex.FromLayersOnDiskAsync([.. baseImage.Layers.Select(Opener)], tempDirectory, cancellationToken).ConfigureAwait(false);
        cache?.TryPut(id, index, baseImage.Config);
        return index;
    }
}
