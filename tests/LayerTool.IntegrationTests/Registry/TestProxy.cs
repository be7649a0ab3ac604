using System.Collections.Concurrent;
using System.Net;
using System.Text;

namespace LayerTool.IntegrationTests.Registry;

/// <summary>What a <see cref="TestProxy"/> does to the traffic it forwards.</summary>
public sealed record ProxyBehaviour
{
    /// <summary>The first GET of each blob is cut half-way (the connection is aborted).</summary>
    public bool CutFirstBlobDownload { get; init; }

    /// <summary>Range headers are dropped: every blob GET answers 200 with the whole blob.</summary>
    public bool IgnoreRange { get; init; }

    /// <summary>One byte in the middle of every blob body is flipped.</summary>
    public bool CorruptBlobs { get; init; }

    /// <summary>Every request but <c>/v2/</c> answers 404 (a mirror without the image).</summary>
    public bool NotFound { get; init; }

    /// <summary>Blob GETs answer 307 to this base URL (another "host") instead of being forwarded.</summary>
    public Uri? RedirectBlobsTo { get; init; }

    /// <summary>Sent upstream on every request (a storage backend's own access), replacing the client's.</summary>
    public string? UpstreamAuthorization { get; init; }

    /// <summary>
    /// A Bearer token service in front of the registry: the user and password it accepts at <c>/token</c>, by
    /// <c>GET</c> with Basic credentials (one <c>scope=</c> per scope) or by an OAuth2 <c>POST</c> with
    /// <c>grant_type=password</c>.
    /// </summary>
    public (string User, string Password)? Bearer { get; init; }

    /// <summary>With <see cref="Bearer"/>: the refresh token (a docker config <c>identitytoken</c>) an OAuth2 <c>POST</c> with <c>grant_type=refresh_token</c> may present.</summary>
    public string? RefreshToken { get; init; }

    /// <summary>Added before each request is forwarded.</summary>
    public TimeSpan Latency { get; init; }

    /// <summary>Bytes a second each response body may go at (0: unlimited).</summary>
    public long BytesPerSecond { get; init; }
}

/// <summary>A request to the token service: GET or POST, the grant (POST only), and the scopes asked for.</summary>
public sealed record TokenRequest(string Method, string? Grant, string[] Scopes, bool Granted);

/// <summary>A request as the proxy received it.</summary>
public sealed record ProxiedRequest(string Method, string PathAndQuery, string? Authorization, string? Range, int Status);

/// <summary>
/// A small HTTP proxy on 127.0.0.1 in front of a registry (HttpListener: no Kestrel), for the protocol edge
/// cases a real registry does not produce: cut connections, ignored ranges, corrupt bytes, 404 mirrors, blob
/// redirects to another port, a Bearer token service, latency and a bandwidth cap. Records every request.
/// </summary>
public sealed class TestProxy : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly HttpClient _http = new(new SocketsHttpHandler { AllowAutoRedirect = false, AutomaticDecompression = DecompressionMethods.None, UseCookies = false })
    {
        Timeout = Timeout.InfiniteTimeSpan,
    };

    private readonly Uri _upstream;
    private readonly ProxyBehaviour _behaviour;
    private readonly ConcurrentQueue<ProxiedRequest> _requests = new();
    private readonly ConcurrentDictionary<string, int> _blobGets = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _tokens = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public TestProxy(Uri upstream, ProxyBehaviour behaviour)
    {
        _upstream = upstream;
        _behaviour = behaviour;
        Port = RegistryServer.FreePort();
        _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        _listener.Start();
        _loop = Task.Run(LoopAsync);
    }

    public int Port { get; }

    public string Host => $"127.0.0.1:{Port}";

    public Uri BaseUri => new($"http://127.0.0.1:{Port}/");

    public IReadOnlyList<ProxiedRequest> Requests => [.. _requests];

    /// <summary>The scopes asked for at <c>/token</c>, one list per token request.</summary>
    public ConcurrentQueue<string[]> TokenScopes { get; } = new();

    /// <summary>Every token request, GET or POST.</summary>
    public ConcurrentQueue<TokenRequest> TokenRequests { get; } = new();

    private async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (HttpListenerException)
            {
                return;
            }

            _ = Task.Run(() => HandleAsync(context));
        }
    }

    private async Task HandleAsync(HttpListenerContext context)
    {
        var request = context.Request;
        var response = context.Response;
        var path = request.Url!.PathAndQuery;
        var status = 0;
        try
        {
            if (_behaviour.Latency > TimeSpan.Zero) await Task.Delay(_behaviour.Latency);
            var isBlobGet = request.HttpMethod is "GET" && request.Url.AbsolutePath.Contains("/blobs/sha256:", StringComparison.Ordinal);
            if (_behaviour.Bearer is { } bearer && !await BearerGateAsync(context, bearer))
            {
                status = response.StatusCode;
                return;
            }

            if (_behaviour.NotFound && request.Url.AbsolutePath != "/v2/")
            {
                status = 404;
                response.StatusCode = 404;
                response.ContentType = "application/json";
                var notFound = Encoding.UTF8.GetBytes("""{"errors":[{"code":"NAME_UNKNOWN","message":"not on this mirror"}]}""");
                response.ContentLength64 = notFound.Length;
                await response.OutputStream.WriteAsync(notFound);
                response.Close();
                return;
            }

            if (isBlobGet && _behaviour.RedirectBlobsTo is { } redirect)
            {
                status = 307;
                response.StatusCode = 307;
                response.RedirectLocation = new Uri(redirect, request.Url.PathAndQuery.TrimStart('/')).ToString();
                response.ContentLength64 = 0;
                response.Close();
                return;
            }

            using var forward = new HttpRequestMessage(new HttpMethod(request.HttpMethod), new Uri(_upstream, path.TrimStart('/')));
            foreach (var name in request.Headers.AllKeys.OfType<string>())
            {
                if (name is "Host" or "Connection" or "Content-Length" or "Transfer-Encoding" or "Expect" or "Keep-Alive") continue;
                if (name == "Authorization" && (_behaviour.Bearer is not null || _behaviour.UpstreamAuthorization is not null)) continue;
                if (name == "Range" && _behaviour.IgnoreRange) continue;
                if (name.StartsWith("Content-", StringComparison.OrdinalIgnoreCase)) continue;
                forward.Headers.TryAddWithoutValidation(name, request.Headers.GetValues(name)!);
            }

            if (_behaviour.UpstreamAuthorization is { } upstreamAuth) forward.Headers.TryAddWithoutValidation("Authorization", upstreamAuth);
            if (request.HasEntityBody || request.HttpMethod is "PUT" or "PATCH" or "POST")
            {
                var content = new StreamContent(request.InputStream);
                foreach (var name in request.Headers.AllKeys.OfType<string>().Where(n => n.StartsWith("Content-", StringComparison.OrdinalIgnoreCase) && n != "Content-Length"))
                    content.Headers.TryAddWithoutValidation(name, request.Headers.GetValues(name)!);
                if (request.ContentLength64 >= 0) content.Headers.ContentLength = request.ContentLength64;
                forward.Content = content;
            }

            using var answer = await _http.SendAsync(forward, HttpCompletionOption.ResponseHeadersRead);
            status = (int)answer.StatusCode;
            response.StatusCode = status;
            foreach (var (name, values) in answer.Headers.Concat(answer.Content.Headers))
            {
                if (name is "Transfer-Encoding" or "Connection" or "Content-Length" or "Keep-Alive" or "Date" or "Server") continue;
                foreach (var value in values)
                {
                    var text = name == "Location" ? value.Replace(_upstream.GetLeftPart(UriPartial.Authority), $"http://127.0.0.1:{Port}", StringComparison.Ordinal) : value;
                    response.AddHeader(name, text);
                }
            }

            var length = answer.Content.Headers.ContentLength;
            if (length is { } l) response.ContentLength64 = l;
            var cut = isBlobGet && _behaviour.CutFirstBlobDownload && _blobGets.AddOrUpdate(request.Url.AbsolutePath, 1, (_, n) => n + 1) == 1 && length > 1
                ? length / 2
                : null;
            var body = await answer.Content.ReadAsStreamAsync();
            var buffer = new byte[64 << 10];
            long sent = 0;
            var started = Environment.TickCount64;
            int n;
            while ((n = await body.ReadAsync(buffer)) > 0)
            {
                if (cut is { } at && sent + n >= at)
                {
                    await response.OutputStream.WriteAsync(buffer.AsMemory(0, (int)(at - sent)));
                    await response.OutputStream.FlushAsync();
                    status = -1;
                    response.Abort();
                    return;
                }

                if (isBlobGet && _behaviour.CorruptBlobs && sent <= (length ?? 0) / 2 && (length ?? 0) / 2 < sent + n)
                    buffer[(int)((length ?? 0) / 2 - sent)] ^= 0xff;
                await response.OutputStream.WriteAsync(buffer.AsMemory(0, n));
                sent += n;
                if (_behaviour.BytesPerSecond > 0)
                {
                    var due = started + (sent * 1000 / _behaviour.BytesPerSecond);
                    var wait = due - Environment.TickCount64;
                    if (wait > 0) await Task.Delay((int)wait);
                }
            }

            response.Close();
        }
        catch (Exception)
        {
            // The client went away or the upstream failed: end the connection; the request is recorded below.
            try
            {
                response.Abort();
            }
            catch (ObjectDisposedException)
            {
            }
        }
        finally
        {
            _requests.Enqueue(new ProxiedRequest(request.HttpMethod, path, request.Headers["Authorization"], request.Headers["Range"], status));
        }
    }

    /// <summary>Answers <c>/token</c> and refuses requests without a token it gave; true when the request may pass.</summary>
    private async Task<bool> BearerGateAsync(HttpListenerContext context, (string User, string Password) accepted)
    {
        var request = context.Request;
        var response = context.Response;
        var challenge = $"Bearer realm=\"http://127.0.0.1:{Port}/token\",service=\"layertool-test\"";
        if (request.Url!.AbsolutePath == "/token")
        {
            string[] scopes;
            bool granted;
            string? grant = null;
            if (request.HttpMethod == "POST")
            {
                // OAuth2 (RFC 6749 4.3 and 6, as docker/distribution's token spec): a form body, scopes space-separated in one field.
                string body;
                using (var reader = new StreamReader(request.InputStream, Encoding.UTF8))
                    body = await reader.ReadToEndAsync();
                var form = System.Web.HttpUtility.ParseQueryString(body);
                grant = form["grant_type"];
                scopes = (form["scope"] ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
                granted = form["service"] == "layertool-test" && !string.IsNullOrEmpty(form["client_id"]) && grant switch
                {
                    "refresh_token" => _behaviour.RefreshToken is { } refresh && form["refresh_token"] == refresh,
                    "password" => form["username"] == accepted.User && form["password"] == accepted.Password,
                    _ => false,
                };
            }
            else
            {
                var expected = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{accepted.User}:{accepted.Password}"));
                scopes = request.QueryString.GetValues("scope") ?? [];
                granted = request.Headers["Authorization"] == expected;
            }

            TokenScopes.Enqueue(scopes);
            TokenRequests.Enqueue(new TokenRequest(request.HttpMethod, grant, scopes, granted));
            if (!granted)
            {
                // OAuth2 answers a bad grant with 400 invalid_grant; the GET flow with 401.
                byte[] refusal = request.HttpMethod == "POST" ? Encoding.UTF8.GetBytes("""{"error":"invalid_grant","error_description":"refresh token refused"}""") : [];
                response.StatusCode = request.HttpMethod == "POST" ? 400 : 401;
                response.ContentType = "application/json";
                response.ContentLength64 = refusal.Length;
                await response.OutputStream.WriteAsync(refusal);
                response.Close();
                return false;
            }

            var token = "t-" + Guid.NewGuid().ToString("N");
            _tokens[token] = string.Join(' ', scopes);
            var answer = Encoding.UTF8.GetBytes(request.HttpMethod == "POST"
                ? $$"""{"access_token":"{{token}}","expires_in":300,"scope":"{{string.Join(' ', scopes)}}"}"""
                : $$"""{"token":"{{token}}","expires_in":300}""");
            response.StatusCode = 200;
            response.ContentType = "application/json";
            response.ContentLength64 = answer.Length;
            await response.OutputStream.WriteAsync(answer);
            response.Close();
            return false;
        }

        var authorization = request.Headers["Authorization"];
        if (authorization is not null && authorization.StartsWith("Bearer ", StringComparison.Ordinal) && _tokens.ContainsKey(authorization[7..]))
            return true;
        response.StatusCode = 401;
        response.AddHeader("WWW-Authenticate", challenge);
        response.ContentLength64 = 0;
        response.Close();
        return false;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        _listener.Close();
        try
        {
            await _loop;
        }
        catch (Exception) when (_stop.IsCancellationRequested)
        {
        }

        _http.Dispose();
        _stop.Dispose();
    }
}
