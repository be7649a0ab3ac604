using Docker.DotNet;

namespace LayerTool.Docker;

/// <summary>Where the engine is and which API version to speak with it.</summary>
/// <param name="Endpoint">The engine endpoint (e.g. <c>unix:///var/run/docker.sock</c>); null resolves
/// <c>DOCKER_HOST</c> and the current docker context like the docker CLI does.</param>
/// <param name="Context">A docker context name to use instead of the current one.</param>
public sealed record EngineSettings(Uri? Endpoint = null, string? Context = null);

/// <summary>
/// A connection to a Docker engine with a negotiated API version: the lower of the engine's maximum and
/// the newest this client knows. Never pinned: Docker 20.10 stops at 1.41, Docker 29.0–29.2 refuse
/// anything below 1.44.
/// </summary>
public sealed class DockerConnection : IDisposable
{
    /// <summary>The newest API version Docker.DotNet.Enhanced 4.3 models (Docker 29.4).</summary>
    public static readonly Version ClientMaxApiVersion = new(1, 53);

    private DockerConnection(DockerClient client, Version apiVersion, string serverVersion, string endpointDescription)
    {
        Client = client;
        ApiVersion = apiVersion;
        ServerVersion = serverVersion;
        EndpointDescription = endpointDescription;
    }

    /// <summary>The underlying client; only code in this project uses it.</summary>
    internal DockerClient Client { get; }

    public Version ApiVersion { get; }

    public string ServerVersion { get; }

    public string EndpointDescription { get; }

    /// <summary>Connects, asks the engine for its versions and returns a client pinned to the negotiated one.</summary>
    public static async Task<DockerConnection> ConnectAsync(EngineSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var endpoint = settings.Endpoint?.ToString() ?? "the default engine (DOCKER_HOST / docker context)";
        global::Docker.DotNet.Models.VersionResponse version;
        using (var probe = Builder(settings).Build())
        {
            try
            {
                // Unversioned request: every engine answers it with its own current version.
                version = await probe.System.GetVersionAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception e) when (e is DockerApiException or HttpRequestException or IOException or TimeoutException
                                          or System.Net.Sockets.SocketException or OperationCanceledException or InvalidOperationException)
            {
                throw new EngineException($"cannot reach the Docker engine at {endpoint}: {e.Message.Trim()} (is dockerd running? scripts/engine.sh up starts one)", e);
            }
        }

        var serverMax = Version.TryParse(version.APIVersion, out var max) ? max : ClientMaxApiVersion;
        var negotiated = serverMax < ClientMaxApiVersion ? serverMax : ClientMaxApiVersion;
        var client = Builder(settings).WithApiVersion(negotiated).Build();
        return new DockerConnection(client, negotiated, version.Version, endpoint);
    }

    private static DockerClientBuilder Builder(EngineSettings settings)
    {
        var builder = new DockerClientBuilder().WithTimeout(Timeout.InfiniteTimeSpan);
        if (settings.Context is not null) builder = builder.WithContext(settings.Context);
        if (settings.Endpoint is not null) builder = builder.WithEndpoint(settings.Endpoint);
        return builder;
    }

    public void Dispose() => Client.Dispose();
}
