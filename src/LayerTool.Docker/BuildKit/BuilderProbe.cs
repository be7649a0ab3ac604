using System.Net.Sockets;

namespace LayerTool.Docker.BuildKit;

/// <summary>Whether an engine runs BuildKit builds through the Engine API, and why (one line, for people).</summary>
public sealed record BuildKitAvailability(bool Available, string Reason);

/// <summary>
/// Asks the engine whether it has BuildKit. <c>GET /_ping</c> sends <c>Builder-Version: 2</c> where BuildKit is
/// the default builder (Docker 23 and later on Linux, or <c>"features":{"buildkit":true}</c>), <c>1</c> where the
/// operator chose the classic one, and nothing at all on Docker 18.09–20.10 by default, although those engines
/// run <c>POST /build?version=2</c> on their embedded BuildKit (measured: 20.10 sends no Builder-Version). So:
/// a Windows engine or an API older than 1.39 (Docker 18.09) has none; a <c>1</c> is the operator's choice;
/// otherwise BuildKit.
/// </summary>
public static class BuilderProbe
{
    /// <summary>API 1.39 is Docker 18.09, the first engine whose BuildKit runs without experimental mode.</summary>
    public static readonly Version FirstBuildKitApi = new(1, 39);

    public static async Task<BuildKitAvailability> ProbeAsync(DockerConnection connection, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        using var http = EngineHttp.Create(connection);
        string? builderVersion, osType;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri("/_ping", UriKind.Relative));
            using var response = await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
            builderVersion = response.Headers.TryGetValues("Builder-Version", out var b) ? b.FirstOrDefault() : null;
            osType = response.Headers.TryGetValues("OSType", out var o) ? o.FirstOrDefault() : null;
        }
        catch (Exception e) when (e is HttpRequestException or IOException or SocketException)
        {
            throw new EngineException($"lost the Docker engine while trying to ask it for its builder: {EngineErrors.Cause(e)}", e);
        }
        return Decide(builderVersion, osType, connection.ApiVersion);
    }

    /// <summary>The decision from the ping's headers and the negotiated API version (pure: tested without an engine).</summary>
    public static BuildKitAvailability Decide(string? builderVersion, string? osType, Version apiVersion)
    {
        ArgumentNullException.ThrowIfNull(apiVersion);
        if (string.Equals(osType, "windows", StringComparison.OrdinalIgnoreCase))
            return new(false, "the engine runs Windows containers, which have no BuildKit");
        if (apiVersion < FirstBuildKitApi)
            return new(false, $"the engine speaks API {apiVersion}, older than BuildKit (API 1.39, Docker 18.09)");
        return builderVersion switch
        {
            "2" => new(true, "the engine's default builder is BuildKit (Builder-Version: 2)"),
            "1" => new(false, "the engine's operator made the classic builder its default (Builder-Version: 1, \"features\": {\"buildkit\": false})"),
            _ => new(true, $"the engine (API {apiVersion}) has BuildKit through POST /build?version=2, though it does not make it its default"),
        };
    }
}
