namespace LayerTool.Docker.Squash;

/// <summary>
/// What to squash: every layer <see cref="Image"/> adds over <see cref="Base"/> becomes ONE layer, the
/// difference of the two filesystems. Used by <c>layertool squash</c> and by COMPRESS in builds.
/// </summary>
/// <param name="Image">The image to squash (reference or ID, as the engine knows it).</param>
/// <param name="Base">The base to put the new layer on: a reference or ID, or null for scratch.</param>
/// <param name="Tags">Tags to give the result (none: the result is only known by its ID).</param>
/// <param name="Message">The comment of the squash's history entry.</param>
/// <param name="Timestamp">When set (reproducible mode, SOURCE_DATE_EPOCH), file times above it and the
/// history entry's time are clamped to it so the same inputs give the same image ID.</param>
/// <param name="Load">Load the result into the engine (false: only write <see cref="OutputPath"/>).</param>
/// <param name="OutputPath">Also write the result to this file or directory.</param>
/// <param name="OutputFormat">"docker" (docker-archive tar) or "oci" (OCI image layout).</param>
/// <param name="FastPath">Allow the local overlay2 fast path (false: always read through the engine API).</param>
public sealed record SquashRequest(
    string Image,
    string? Base,
    IReadOnlyList<string> Tags,
    string? Message = null,
    DateTimeOffset? Timestamp = null,
    bool Load = true,
    string? OutputPath = null,
    string OutputFormat = "docker",
    bool FastPath = true);

/// <summary>The outcome of a squash.</summary>
public sealed record SquashResult(
    string ImageId,
    string LayerDiffId,
    int LayersBefore,
    int LayersAfter,
    long BytesBefore,
    long BytesAfter,
    long LayerBytes,
    IReadOnlyList<string> Tags,
    IReadOnlyList<string> Warnings,
    string? Method = null);

/// <summary>Progress while a squash streams (bytes of the final filesystem read so far).</summary>
public sealed record SquashProgress(string Phase, long Bytes, long? TotalBytes);

/// <summary>Squashes images held by an engine. Implemented by LayerTool.Docker.</summary>
public interface ISquashService
{
    Task<SquashResult> SquashAsync(SquashRequest request, IProgress<SquashProgress>? progress, CancellationToken cancellationToken);
}
