using LayerTool.Image.Squash;

namespace LayerTool.Docker.Squash;

/// <summary>Progress while a squash streams (bytes of the final filesystem read so far).</summary>
public sealed record SquashProgress(string Phase, long Bytes, long? TotalBytes);

/// <summary>Squashes images held by an engine (requests with <see cref="EngineSquashSource"/>s): <see cref="EngineSquashService"/>.</summary>
public interface ISquashService
{
    Task<SquashResult> SquashAsync(SquashRequest request, IProgress<SquashProgress>? progress, CancellationToken cancellationToken);
}
