using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Layers.Index;

namespace LayerTool.Image.Squash;

/// <summary>Writes the one new layer: the difference from the base index to the final filesystem, into
/// <c>output</c>. The source decides how the final filesystem is read (an engine export, an archive's layers).</summary>
public delegate Task<LayerDiffResult> SquashLayerWriter(FsIndex baseIndex, Stream output, LayerDiffOptions options, CancellationToken cancellationToken);

/// <summary>What to squash, whatever the images' source.</summary>
public sealed record SquashSpec
{
    /// <summary>The final image F: its config is kept, its filesystem is what the result must hold.</summary>
    public required IImage Final { get; init; }

    /// <summary>The base B (its layers are shared by the result); null for scratch.</summary>
    public IImage? Base { get; init; }

    /// <summary>B's filesystem (<see cref="FsIndex.Empty"/> for scratch).</summary>
    public required FsIndex BaseIndex { get; init; }

    /// <summary>Writes the new layer (see <see cref="SquashLayerWriter"/>).</summary>
    public required SquashLayerWriter WriteLayer { get; init; }

    /// <summary>B's name for the OCI base-name label (as the user gave it).</summary>
    public string? BaseName { get; init; }

    /// <summary>B's digest for the OCI base-digest label (a repo digest when known, else its image ID).</summary>
    public Digest? BaseDigest { get; init; }

    /// <summary>The squash history entry's comment.</summary>
    public string? Message { get; init; }

    /// <summary>The squash history entry's <c>created_by</c>.</summary>
    public string CreatedBy { get; init; } = "layertool squash";

    /// <summary>Reproducible mode: file times after it are clamped to it, and it is the squash's time.</summary>
    public DateTimeOffset? Timestamp { get; init; }

    /// <summary>Verify by reading the written layer back (the slower, independent check) instead of from the
    /// entries the tar writer recorded while writing it.</summary>
    public bool VerifyByRereading { get; init; }

    /// <summary>The squash's time when not reproducible (an injected clock).</summary>
    public DateTimeOffset Now { get; init; } = DateTimeOffset.UtcNow;

    /// <summary>Where the new layer and spill files go; the system temp directory when null.</summary>
    public string? TempDirectory { get; init; }

    /// <summary>The root directory's entry the new layer starts with (see <see cref="RootEntry.ToWrite"/>), or null.</summary>
    public LayerEntry? Root { get; init; }

    /// <summary>Re-reads a file of the final filesystem (a rare hard-link case; see <see cref="ContentReopener"/>).</summary>
    public ContentReopener? ReopenContent { get; init; }

    /// <summary>
    /// Write the new layer to this stream (e.g. straight into a load request) instead of a temp file. Whoever
    /// reads it must not act on it before the squash returns verified (a load must not be completed before);
    /// the result then has no layer file (<see cref="SquashedImage.NewLayer"/> can only describe the layer).
    /// </summary>
    public Stream? LayerStream { get; init; }
}

/// <summary>
/// A verified squash result: B's layers plus (unless F's filesystem equals B's) one new layer held in a
/// temporary file, deleted on dispose. Nothing has been tagged or written anywhere yet.
/// </summary>
public sealed class SquashedImage : IImage, IDisposable
{
    private readonly string? _layerFile;

    internal SquashedImage(ComposedImage image, ILayer? newLayer, string? layerFile, long layerSize, long entries, long whiteouts,
        int baseLayers, IReadOnlyList<string> warnings)
    {
        Image = image;
        NewLayer = newLayer;
        _layerFile = layerFile;
        LayerSize = layerSize;
        Entries = entries;
        Whiteouts = whiteouts;
        BaseLayerCount = baseLayers;
        Warnings = warnings;
    }

    public ComposedImage Image { get; }

    public ImageConfig Config => Image.Config;

    public IReadOnlyList<ILayer> Layers => Image.Layers;

    /// <summary>The new layer (a <see cref="FileLayer"/>, or a <see cref="DescribedLayer"/> when it was written to
    /// <see cref="SquashSpec.LayerStream"/>), or null when F's filesystem equals B's (only the config changed).</summary>
    public ILayer? NewLayer { get; }

    /// <summary>Bytes of the new layer's tar (0 without one).</summary>
    public long LayerSize { get; }

    public long Entries { get; }

    public long Whiteouts { get; }

    /// <summary>How many of <see cref="Layers"/> are B's.</summary>
    public int BaseLayerCount { get; }

    /// <summary>Things the user should know (e.g. B is not an ancestor of F).</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>The image ID in the graph-driver store (the config digest).</summary>
    public Digest ImageId => Config.Digest;

    public void Dispose()
    {
        if (_layerFile is not null) File.Delete(_layerFile);
    }
}

/// <summary>The squash failed its own check: B plus the new layer would not be F's filesystem.</summary>
public sealed class SquashVerificationException : Exception
{
    public SquashVerificationException(string message) : base(message) { }

    public SquashVerificationException(string message, Exception inner) : base(message, inner) { }

    public SquashVerificationException() { }
}

/// <summary>
/// Squash as one function over two images (docs/design/ARCHITECTURE.md, "The squash algorithm"): writes the new layer
/// (a diff of filesystems), verifies that B's index with the layer applied equals F's index, and makes the
/// config (<see cref="SquashConfig"/>). Whatever the sources, the result is only returned once verified.
/// </summary>
public static class ImageSquasher
{
    public static async Task<SquashedImage> SquashAsync(SquashSpec spec, IProgress<long>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var warnings = new List<string>();
        var baseIds = spec.Base?.Config.DiffIds ?? [];
        var finalIds = spec.Final.Config.DiffIds;
        if (spec.Base is not null && !IsPrefix(baseIds, finalIds))
            warnings.Add($"the base {spec.BaseName ?? spec.Base.Config.Digest.ToString()} is not an ancestor of the image: the new layer holds the whole difference (the result is exact all the same)");

        if (spec.LayerStream is not null && spec.VerifyByRereading)
            throw new ArgumentException("a layer written to a stream cannot be read back to verify it", nameof(spec));
        var directory = spec.TempDirectory ?? Path.GetTempPath();
        var layerFile = spec.LayerStream is null ? Path.Combine(directory, $"layertool-squash-{Guid.NewGuid():N}.tar") : null;
        var keep = false;
        LayerDiffResult? diff = null;
        try
        {
            var options = new LayerDiffOptions
            {
                ClampTime = spec.Timestamp,
                TempDirectory = spec.TempDirectory,
                ReopenContent = spec.ReopenContent,
                Progress = progress,
                // Verified from the written-entry log, a written file's hash would only be compared with itself.
                HashWrittenContent = spec.VerifyByRereading,
                Root = spec.Root,
            };
            if (layerFile is null)
            {
                diff = await spec.WriteLayer(spec.BaseIndex, spec.LayerStream!, options, cancellationToken).ConfigureAwait(false);
                await spec.LayerStream!.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
            else
            {
                var output = new FileStream(layerFile, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
                await using (output.ConfigureAwait(false))
                {
                    diff = await spec.WriteLayer(spec.BaseIndex, output, options, cancellationToken).ConfigureAwait(false);
                }
            }

            IReadOnlyList<FsDifference> differences;
            if (diff.WrittenLog is { } written && !spec.VerifyByRereading)
            {
                differences = LayerVerifier.VerifyWritten(spec.BaseIndex, written, diff.FinalIndex, cancellationToken);
            }
            else
            {
                var verify = new FileStream(layerFile!, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan | FileOptions.Asynchronous);
                await using (verify.ConfigureAwait(false))
                {
                    differences = await LayerVerifier.VerifyAsync(spec.BaseIndex, verify, diff.FinalIndex, cancellationToken, tempDirectory: spec.TempDirectory).ConfigureAwait(false);
                }
            }
            if (differences.Count > 0)
            {
                throw new SquashVerificationException(
                    $"the squashed layer does not reproduce the image's filesystem ({differences.Count}{(differences.Count >= 100 ? "+" : "")} differences; nothing was tagged or written): "
                    + string.Join("; ", differences.Take(5)));
            }

            var hasLayer = diff.Entries > 0;
            var diffId = Digest.Parse(diff.DiffId);
            var config = SquashConfig.Create(new SquashConfigOptions
            {
                Final = spec.Final.Config,
                Base = spec.Base?.Config,
                NewLayerDiffId = hasLayer ? diffId : null,
                Message = spec.Message,
                CreatedBy = spec.CreatedBy,
                BaseName = spec.Base is null ? null : spec.BaseName,
                BaseDigest = spec.Base is null ? null : spec.BaseDigest ?? spec.Base.Config.Digest,
                Created = spec.Timestamp ?? spec.Now,
            });
            ILayer? newLayer = !hasLayer ? null : layerFile is null ? new DescribedLayer(diffId, null) : new FileLayer(layerFile, diffId);
            var layers = new List<ILayer>(spec.Base?.Layers ?? []);
            if (newLayer is not null) layers.Add(newLayer);
            var image = new ComposedImage(config, layers);
            keep = hasLayer;
            return new SquashedImage(image, newLayer, hasLayer ? layerFile : null, hasLayer ? diff.Size : 0, diff.Entries, diff.Whiteouts,
                spec.Base?.Layers.Count ?? 0, warnings);
        }
        finally
        {
            if (!keep && layerFile is not null) File.Delete(layerFile);
            // The final index and the written-entry log are unlinked temp files: close them now rather than at collection.
            diff?.Dispose();
        }
    }

    private static bool IsPrefix(IReadOnlyList<Digest> prefix, IReadOnlyList<Digest> list)
    {
        if (prefix.Count > list.Count) return false;
        for (var i = 0; i < prefix.Count; i++)
        {
            if (prefix[i] != list[i]) return false;
        }
        return true;
    }
}
