using Docker.DotNet.Models;

namespace LayerTool.Docker.Rebase;

/// <summary>Lists the IDs of the engine's images (intermediate ones too): what the old-base search by layer prefix needs.</summary>
public interface IImageLister
{
    Task<IReadOnlyList<string>> ListImageIdsAsync(CancellationToken cancellationToken);
}

/// <summary><see cref="IImageLister"/> over the Engine API (<c>GET /images/json?all=1</c>).</summary>
public sealed class DockerImageLister(DockerConnection connection) : IImageLister
{
    public async Task<IReadOnlyList<string>> ListImageIdsAsync(CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        try
        {
            var images = await connection.Client.Images.ListImagesAsync(new ImagesListParameters { All = true }, cancellationToken).ConfigureAwait(false);
            return [.. images.Select(i => i.ID).Distinct(StringComparer.Ordinal)];
        }
        catch (global::Docker.DotNet.DockerApiException e)
        {
            throw new EngineException($"cannot list the engine's images: {EngineErrors.Message(e)}", e);
        }
    }
}
