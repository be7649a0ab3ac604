using Docker.DotNet;
using Docker.DotNet.Models;

namespace LayerTool.Docker.Dind;

/// <summary>
/// Moves images between two engines: <c>docker save</c> on one streamed straight into <c>docker load</c>
/// on the other, nothing buffered. The loading engine skips every layer whose chain ID it already has
/// (moby's tarexport load checks the layer store before extracting), so layers shared with images it
/// holds cost transport only, not extraction. The saving side cannot leave them out: the API has no
/// "save only these layers".
/// </summary>
public static class ImageTransfer
{
    public static async Task<ImageTransferResult> CopyAsync(DockerConnection source, DockerConnection target, IEnumerable<string> references,
        CancellationToken cancellationToken)
    {
        var sent = new List<string>();
        var there = new List<string>();
        var missing = new List<string>();
        foreach (var reference in references.Distinct(StringComparer.Ordinal))
        {
            var sourceId = await ImageIdAsync(source, reference, cancellationToken).ConfigureAwait(false);
            if (sourceId is null) { missing.Add(reference); continue; }
            var targetId = await ImageIdAsync(target, reference, cancellationToken).ConfigureAwait(false);
            if (string.Equals(sourceId, targetId, StringComparison.Ordinal)) there.Add(reference);
            else sent.Add(reference);
        }
        if (sent.Count == 0) return new ImageTransferResult(sent, there, missing);

        // One archive for all: layers shared between the images travel once.
        try
        {
            using var archive = await source.Client.Images.SaveImagesAsync([.. sent], cancellationToken).ConfigureAwait(false);
            var errors = new List<string>();
            var progress = new ImmediateProgress<JSONMessage>(m =>
            {
                if (m.Error?.Message is { Length: > 0 } e) errors.Add(e);
            });
            await target.Client.Images.LoadImageAsync(new ImageLoadParameters { Quiet = true }, archive, progress, cancellationToken)
                .ConfigureAwait(false);
            if (errors.Count > 0)
                throw new EngineException($"loading {string.Join(", ", sent)} into {target.EndpointDescription} failed: {string.Join("; ", errors)}");
        }
        catch (DockerApiException e)
        {
            throw new EngineException($"copying {string.Join(", ", sent)} from {source.EndpointDescription} to {target.EndpointDescription} failed: {e.ResponseBody?.Trim() ?? e.Message}", e);
        }
        return new ImageTransferResult(sent, there, missing);
    }

    /// <summary>The image ID of a reference (a name or an ID), or null when the engine does not have it.</summary>
    public static async Task<string?> ImageIdAsync(DockerConnection engine, string reference, CancellationToken cancellationToken)
    {
        try
        {
            var image = await engine.Client.Images.InspectImageAsync(reference, cancellationToken).ConfigureAwait(false);
            return image.ID;
        }
        catch (DockerImageNotFoundException)
        {
            return null;
        }
    }
}

/// <summary>What a transfer did: references sent, and those left out because the target already had
/// them (same image ID) or the source did not.</summary>
public sealed record ImageTransferResult(IReadOnlyList<string> Sent, IReadOnlyList<string> AlreadyThere, IReadOnlyList<string> MissingAtSource);

/// <summary>An <see cref="IProgress{T}"/> that reports on the caller's thread, in order (unlike
/// <see cref="Progress{T}"/>, which posts to the thread pool).</summary>
internal sealed class ImmediateProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
