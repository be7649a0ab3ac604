using LayerTool.Image.Formats;
using LayerTool.Image.Layers;

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

/// <summary>Squashes an image from an archive onto a base from an archive, into a new archive.</summary>
public static class ArchiveSquasher
{
    public static async Task<ArchiveSquashResult> SquashAsync(ArchiveSquashRequest request, IProgress<long>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var tags = request.Tags.Select(t => ImageReference.TryParse(t, out var r, out var error) && r.Digest is null
            ? r : throw new ImageFormatException($"invalid tag '{t}': {error ?? "a tag cannot hold a digest"}")).ToList();
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

        using var baseIndex = baseImage is null ? FsIndex.Empty : await BaseIndexAsync(baseImage, request.CacheDirectory, request.TempDirectory, cancellationToken).ConfigureAwait(false);
        var finalLayers = final.Layers.Select(Opener).ToList();
        var finalRoot = await RootEntry.FindAsync(finalLayers, cancellationToken).ConfigureAwait(false);
        var baseRoot = baseImage is null ? null : await RootEntry.FindAsync(baseImage.Layers.Select(Opener), cancellationToken).ConfigureAwait(false);
        using var squashed = await ImageSquasher.SquashAsync(new SquashSpec
        {
            Final = final,
            Base = baseImage,
            BaseIndex = baseIndex,
            BaseName = request.Base ?? baseImage?.ToString(),
            BaseDigest = baseImage?.ManifestDescriptor?.Digest ?? baseImage?.Config.Digest,
            Message = request.Message,
            CreatedBy = baseImage is null ? "layertool squash --onto scratch" : $"layertool squash --onto {request.Base ?? baseImage.ToString()}",
            Timestamp = request.Timestamp,
            Now = request.Now ?? DateTimeOffset.UtcNow,
            TempDirectory = request.TempDirectory,
            Root = RootEntry.ToWrite(finalRoot, ontoScratch: baseImage is null, baseKnown: true, baseRoot),
            WriteLayer = (index, output, diffOptions, ct) => LayerDiff.WriteFromLayersAsync(index, finalLayers, output, diffOptions, ct),
        }, progress, cancellationToken).ConfigureAwait(false);

        var oci = request.OutputFormat switch
        {
            "oci" => true,
            "docker" => false,
            _ => throw new ImageFormatException($"unknown output format '{request.OutputFormat}' (docker or oci)"),
        };
        var written = await ImageArchiveWriter.WriteAsync(request.OutputPath, squashed, new ImageWriteOptions
        {
            Format = oci ? ImageArchiveFormat.OciLayout : ImageArchiveFormat.DockerArchive,
            AsDirectory = oci && !request.OutputPath.EndsWith(".tar", StringComparison.OrdinalIgnoreCase),
            Tags = tags,
            TemporaryDirectory = request.TempDirectory,
            ModificationTime = request.Timestamp ?? DateTimeOffset.UnixEpoch,
        }, cancellationToken).ConfigureAwait(false);

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

    private static long SizeOf(IEnumerable<ILayer> layers) => layers.Sum(l => l.Descriptor?.Size ?? 0);

    private static Func<CancellationToken, Task<Stream>> Opener(ILayer layer) => ct => Task.FromResult(layer.Open(ct));

    private static async Task<FsIndex> BaseIndexAsync(ArchiveImage baseImage, string? cacheDirectory, string? tempDirectory, CancellationToken cancellationToken)
    {
        var cache = cacheDirectory is null ? null : new BaseIndexCache(cacheDirectory);
        var id = baseImage.Config.Digest.ToString();
        if (cache?.TryGet(id) is { } hit) return hit.Index;
        var index = await FsIndex.FromLayersOnDiskAsync([.. baseImage.Layers.Select(Opener)], tempDirectory, cancellationToken).ConfigureAwait(false);
        cache?.TryPut(id, index, baseImage.Config);
        return index;
    }
}
