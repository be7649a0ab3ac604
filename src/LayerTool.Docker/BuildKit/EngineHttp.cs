using System.Net.Sockets;

namespace LayerTool.Docker.BuildKit;

/// <summary>
/// Plain HTTP requests to the engine a <see cref="DockerConnection"/> speaks to, for what Docker.DotNet does not
/// model: <c>POST /build?version=2</c> with <c>buildid</c>, <c>POST /build/cancel</c>, the <c>/_ping</c> headers,
/// and a build stream whose <c>aux</c> is a string. Same endpoint, TLS and API version as the connection.
/// </summary>
public sealed class EngineHttp : IDisposable
{
    private readonly HttpClient _client;
    private readonly string _versionPrefix;

    private EngineHttp(HttpClient client, string versionPrefix)
    {
        _client = client;
        _versionPrefix = versionPrefix;
    }

    public static EngineHttp Create(DockerConnection connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var options = connection.Client.Options;
        var endpoint = options.Endpoint ?? throw new EngineException("the engine connection has no endpoint");
        var sockets = new SocketsHttpHandler { PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30) };
        Uri baseAddress;
        HttpMessageHandler handler = sockets;
        switch (endpoint.Scheme)
        {
            case "unix":
                var path = endpoint.LocalPath;
                sockets.ConnectCallback = async (_, ct) =>
                {
                    var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    try
                    {
                        await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct).ConfigureAwait(false);
                        return new NetworkStream(socket, ownsSocket: true);
                    }
                    catch
                    {
                        socket.Dispose();
                        throw;
                    }
                };
                baseAddress = new Uri("http://docker.sock");
                break;
            case "tcp" or "http" or "https":
                var tls = options.AuthProvider?.TlsEnabled == true || endpoint.Scheme == "https";
                if (options.AuthProvider is { } auth) handler = auth.ConfigureHandler(sockets);
                baseAddress = new UriBuilder(tls ? "https" : "http", endpoint.Host, endpoint.Port).Uri;
                break;
            default:
                sockets.Dispose();
                throw new EngineException($"the BuildKit builder reaches engines on a unix socket or TCP, not {endpoint}");
        }
        var client = new HttpClient(handler, disposeHandler: true) { BaseAddress = baseAddress, Timeout = Timeout.InfiniteTimeSpan };
        foreach (var (name, value) in options.Headers ?? new Dictionary<string, string>()) client.DefaultRequestHeaders.TryAddWithoutValidation(name, value);
        var v = connection.ApiVersion;
        return new EngineHttp(client, $"/v{v.Major}.{v.Minor}");
    }

    /// <summary>A versioned path: <c>/v1.41/build?...</c>.</summary>
    public Uri Versioned(string pathAndQuery) => new(_versionPrefix + pathAndQuery, UriKind.Relative);

    /// <summary>Sends a request and returns once the headers arrived (the body streams).</summary>
    public Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
        _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);

    public void Dispose() => _client.Dispose();
}
