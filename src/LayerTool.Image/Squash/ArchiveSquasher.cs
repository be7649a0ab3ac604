using LayerTool.Image.Formats;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Layers.Index;

namespace LayerTool.Image.Squash;

/// <summary>A squash with no engine: both images come from archives or OCI layouts, the result goes to a file.</summary>
/// <param name="Input">The docker-archive (tar) or OCI layout (directory or tar) holding IMAGE (and BASE, unless <paramref name="BaseInput"/>).</param>
/// <param name="Image">IMAGE: a name, tag or ID inside the archive; null for its only image.</param>
/// <param name="Base">BASE: a name inside the (base) archive, or null for scratch (with <paramref name="BaseInput"/>: its only image).</param>
/// <param name="BaseInput">An archive holding BASE.</param>
/// <param name="OutputPath">Where the result goes (replaced only once complete).</param>
/// <param name="OutputFormat"><c>docker</c> or <c>oci</c>.</param>
/// <param name="Tags">Names written into the result.</param>
/// <param name="Message">The squash history entry's comment.</param>
/// <param name="Timestamp">Reproducible mode's clamp time.</param>
/// <param name="Now">The squash's time otherwise.</param>
/// <param name="CacheDirectory">Where base indexes are cached (null: no cache).</param>
/// <param name="TempDirectory">Where temp files go.</param>
public sealed record ArchiveSquashRequest(
    string Input,
    string? Image,
    string? Base,
    string? BaseInput,
    string OutputPath,
    string OutputFormat,
    IReadOnlyList<string> Tags,
    string? Message = null,
    DateTimeOffset? Timestamp = null,
    DateTimeOffset? Now = null,
    string? CacheDirectory = null,
    string? TempDirectory = null);

/// <summary>What an archive squash produced.</summary>
public sealed record ArchiveSquashResult(
    string ImageId,
    string LayerDiffId,
    int LayersBefore,
    int LayersAfter,
    long BytesBefore,
    long BytesAfter,
    long LayerBytes,
    IReadOnlyList<string> Warnings);

/// <summary>The images of a squash with no engine, wherever they were read from, and how the result is made.</summary>
/// <param name="Final">The image F whose filesystem the result must hold.</param>
/// <param name="Base">The base B, or null for scratch.</param>
public sealed record ImageSquashInput(IImage Final, IImage? Base)
{
    /// <summary>B's name in the squash's history entry and the OCI base-name label (as the user gave it).</summary>
    public string? BaseName { get; init; }

    /// <summary>B's digest for the OCI base-digest label (a manifest digest when known, else its image ID).</summary>
    public Digest? BaseDigest { get; init; }

    /// <summary>The squash history entry's comment.</summary>
    public string? Message { get; init; }

    /// <summary>Reproducible mode's clamp time.</summary>
    public DateTimeOffset? Timestamp { get; init; }

    /// <summary>The squash's time otherwise.</summary>
    public DateTimeOffset Now { get; init; } = DateTimeOffset.UtcNow;

    /// <summary>Where base indexes are cached (null: no cache).</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>Where temp files go (null: the system's temp directory).</summary>
    public string? TempDirectory { get; init; }
}

/// <summary>Squashes an image from an archive onto a base from an archive, into a new archive.</summary>
public static class ArchiveSquasher
{
    public static async Task<ArchiveSquashResult> SquashAsync(ArchiveSquashRequest request, IProgress<long>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var tags = ParseTags(request.Tags);
        var options = new ImageArchiveOptions { TemporaryDirectory = request.TempDirectory };
        foreach (var source in new[] { request.Input, request.BaseInput }.OfType<string>())
        {
            // The result replaces the output path once complete: were it the input, the input would be gone.
            if (FileIdentity.Same(request.OutputPath, source))
                throw new IOException($"the output '{request.OutputPath}' is the input '{source}' (the same file): write the result elsewhere");
        }
        using var input = ImageArchive.Open(request.Input, options);
        using var baseInput = request.BaseInput is null ? null : ImageArchive.Open(request.BaseInput, options);
        var final = input.GetImage(request.Image);
        ArchiveImage? baseImage = baseInput is not null ? baseInput.GetImage(request.Base)
            : request.Base is null ? null : input.GetImage(request.Base);

        using var squashed = await SquashImagesAsync(new ImageSquashInput(final, baseImage)
        {
            BaseName = request.Base ?? baseImage?.ToString(),
            BaseDigest = baseImage?.ManifestDescriptor?.Digest ?? baseImage?.Config.Digest,
            Message = request.Message,
            Timestamp = request.Timestamp,
            Now = request.Now ?? DateTimeOffset.UtcNow,
            CacheDirectory = request.CacheDirectory,
            TempDirectory = request.TempDirectory,
        }, progress, cancellationToken).ConfigureAwait(false);

        var written = await WriteAsync(squashed, request.OutputPath, request.OutputFormat, tags, request.Timestamp, request.TempDirectory, cancellationToken).ConfigureAwait(false);

        var before = SizeOf(final.Layers);
        var baseBytes = baseImage is null ? 0 : SizeOf(baseImage.Layers);
        return new ArchiveSquashResult(
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
    /// Squashes <see cref="ImageSquashInput.Final"/> onto <see cref="ImageSquashInput.Base"/> (scratch when null) with
    /// no engine, from images read anywhere (archives, OCI layouts, a registry): the base's filesystem index is built
    /// from its layers (or taken from the cache by its image ID), the final image's layers are merged as they stream.
    /// The caller delivers the verified result and disposes it.
    /// </summary>
    public static async Task<SquashedImage> SquashImagesAsync(ImageSquashInput input, IProgress<long>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(input);
        var baseImage = input.Base;
        using var baseIndex = baseImage is null ? FsIndex.Empty : await BaseIndexAsync(baseImage, input.CacheDirectory, input.TempDirectory, cancellationToken).ConfigureAwait(false);
        var finalLayers = input.Final.Layers.Select(Opener).ToList();
        var finalRoot = await RootEntry.FindAsync(finalLayers, cancellationToken).ConfigureAwait(false);
        var baseRoot = baseImage is null ? null : await RootEntry.FindAsync(baseImage.Layers.Select(Opener), cancellationToken).ConfigureAwait(false);
        return await ImageSquasher.SquashAsync(new SquashSpec
        {
            Final = input.Final,
            Base = baseImage,
            BaseIndex = baseIndex,
            BaseName = input.BaseName,
            BaseDigest = input.BaseDigest,
            Message = input.Message,
            CreatedBy = baseImage is null ? "layertool squash --onto scratch" : $"layertool squash --onto {input.BaseName ?? baseImage.Config.Digest.ToString()}",
            Timestamp = input.Timestamp,
            Now = input.Now,
            TempDirectory = input.TempDirectory,
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
