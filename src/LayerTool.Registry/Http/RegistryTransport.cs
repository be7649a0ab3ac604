using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using LayerTool.Registry.Auth;

namespace LayerTool.Registry.Http;

/// <summary>One request as it is to be sent (again on a retry or a redirect).</summary>
internal sealed record RequestSpec(HttpMethod Method, Uri Uri)
{
    /// <summary>Accept header values.</summary>
    public IReadOnlyList<string> Accept { get; init; } = [];

    /// <summary>A closed byte range <c>bytes=From-To</c>.</summary>
    public (long From, long To)? Range { get; init; }

    /// <summary>Makes the body afresh for each attempt (null: no body).</summary>
    public Func<HttpContent>? Content { get; init; }

    /// <summary>Attempts (connection errors, 429, 5xx) before the failure is returned or thrown.</summary>
    public int? Attempts { get; init; }

    /// <summary>Return a 429/5xx answer instead of retrying it (the caller decides).</summary>
    public bool NoStatusRetry { get; init; }

    /// <summary>Describes the request in messages ("manifest of x:y").</summary>
    public string What { get; init; } = "";
}

/// <summary>
/// Sends registry requests: authenticates (the <c>/v2/</c> challenge, then Bearer tokens per scope or Basic),
/// follows redirects itself (a redirect to another host never gets the Authorization header; HTTPS is never
/// downgraded to HTTP outside the hosts allowed plain HTTP), and retries connection errors, 408, 429 and 5xx
/// with exponential backoff honouring <c>Retry-After</c>.
/// </summary>
internal sealed class RegistryTransport : IDisposable
{
    private const int MaxRedirects = 10;

    private readonly HttpClient _http;
    private readonly RegistrySettings _settings;
    private readonly ConcurrentDictionary<string, Task<IReadOnlyList<AuthChallenge>>> _challenges = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Lazy<Task<string>>> _tokens = new(StringComparer.Ordinal);

    public RegistryTransport(RegistrySettings settings)
    {
        _settings = settings;
        var handler = settings.Handler ?? new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            MaxConnectionsPerServer = Math.Max(2, settings.Jobs + 2),
            ConnectTimeout = TimeSpan.FromSeconds(30),
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(60),
            UseCookies = false,
        };
        _http = new HttpClient(handler, disposeHandler: settings.Handler is null) { Timeout = Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.TryAddWithoutValidation("User-Agent", settings.UserAgent);
    }

    public RegistrySettings Settings => _settings;

    public void Dispose() => _http.Dispose();

    /// <summary>
    /// Sends <paramref name="spec"/> to <paramref name="endpoint"/> with the access <paramref name="scopes"/>
    /// name (<c>repository:NAME:pull</c>). Returns the final answer whatever its status (the caller disposes it),
    /// after retries; throws <see cref="RegistryException"/> when the registry cannot be reached.
    /// </summary>
    public async Task<HttpResponseMessage> SendAsync(RegistryEndpoint endpoint, RequestSpec spec, IReadOnlyList<string> scopes, CancellationToken cancellationToken)
    {
        var attempts = Math.Max(1, spec.Attempts ?? _settings.MaxAttempts);
        var reauthenticated = false;
        for (var attempt = 1; ; attempt++)
        {
            HttpResponseMessage response;
            try
            {
                var authorization = await AuthorizationAsync(endpoint, scopes, cancellationToken).ConfigureAwait(false);
                response = await SendFollowingRedirectsAsync(endpoint, spec, authorization, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (IsTransient(e, cancellationToken))
            {
                if (attempt >= attempts)
                {
                    throw new RegistryException($"cannot reach {endpoint} ({spec.Uri.GetLeftPart(UriPartial.Authority)}){For(spec)}: {Cause(e)}", e);
                }

                await DelayAsync(attempt, null, cancellationToken).ConfigureAwait(false);
                continue;
            }

            if (response.StatusCode == HttpStatusCode.Unauthorized && !reauthenticated)
            {
                // A token for other scopes, an expired one, or a registry that wants more: ask again with what it says.
                reauthenticated = true;
                var challenges = AuthChallenge.Parse(response.Headers.WwwAuthenticate.Select(h => h.ToString()));
                if (challenges.Count > 0)
                {
                    _challenges[endpoint.BaseUri.AbsoluteUri] = Task.FromResult(challenges);
                    var wanted = challenges.FirstOrDefault(c => c.IsBearer)?["scope"];
                    var merged = wanted is null ? scopes : scopes.Concat(wanted.Split(' ')).Distinct(StringComparer.Ordinal).ToList();
                    ForgetTokens(endpoint);
                    response.Dispose();
                    scopes = merged;
                    attempt--;
                    continue;
                }
            }

            if (!spec.NoStatusRetry && IsTransientStatus(response.StatusCode) && attempt < attempts)
            {
                var retryAfter = RetryAfter(response);
                response.Dispose();
                await DelayAsync(attempt, retryAfter, cancellationToken).ConfigureAwait(false);
                continue;
            }

            return response;
        }
    }

    /// <summary>Whether an exception is a connection-level failure worth another attempt.</summary>
    public static bool IsTransient(Exception e, CancellationToken cancellationToken) =>
        !cancellationToken.IsCancellationRequested && e is HttpRequestException or IOException or TimeoutException
            or TaskCanceledException or System.Net.Sockets.SocketException;

    public static bool IsTransientStatus(HttpStatusCode status) =>
        status is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests or HttpStatusCode.InternalServerError
            or HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout;

    /// <summary>The delay before attempt <paramref name="attempt"/>+1: Retry-After when given, else exponential with jitter.</summary>
    public async Task DelayAsync(int attempt, TimeSpan? retryAfter, CancellationToken cancellationToken)
    {
        var delay = retryAfter ?? TimeSpan.FromTicks((long)(_settings.RetryBaseDelay.Ticks * Math.Pow(2, attempt - 1) * (0.75 + (Random.Shared.NextDouble() / 2))));
        if (delay > _settings.MaxRetryDelay)
        {
            delay = _settings.MaxRetryDelay;
        }

        if (delay > TimeSpan.Zero)
        {
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The <c>Retry-After</c> of an answer (seconds or a date), if any.</summary>
    public static TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        var header = response.Headers.RetryAfter;
        if (header?.Delta is { } delta)
        {
            return delta;
        }

        if (header?.Date is { } date)
        {
            var wait = date - DateTimeOffset.UtcNow;
            return wait > TimeSpan.Zero ? wait : TimeSpan.Zero;
        }

        return null;
    }

    /// <summary>A message for a failed connection: the innermost cause.</summary>
    public static string Cause(Exception e)
    {
        var inner = e;
        while (inner.InnerException is not null && inner is not System.Net.Sockets.SocketException)
        {
            inner = inner.InnerException;
        }

        return inner is TaskCanceledException ? "timed out" : inner.Message;
    }

    private static string For(RequestSpec spec) => spec.What.Length > 0 ? " for " + spec.What : "";

    private async Task<HttpResponseMessage> SendFollowingRedirectsAsync(RegistryEndpoint endpoint, RequestSpec spec, AuthenticationHeaderValue? authorization,
        CancellationToken cancellationToken)
    {
        var uri = spec.Uri;
        var method = spec.Method;
        var registryAuthority = endpoint.BaseUri.GetLeftPart(UriPartial.Authority);
        for (var hop = 0; ; hop++)
        {
            using var request = new HttpRequestMessage(method, uri);
            foreach (var accept in spec.Accept)
            {
                request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(accept));
            }

            if (spec.Range is { } range)
            {
                request.Headers.Range = new RangeHeaderValue(range.From, range.To);
            }

            // Credentials go to the registry's own scheme://host:port only: never to a redirect target elsewhere.
            if (authorization is not null && string.Equals(uri.GetLeftPart(UriPartial.Authority), registryAuthority, StringComparison.OrdinalIgnoreCase))
            {
                request.Headers.Authorization = authorization;
            }

            if (spec.Content is not null && method != HttpMethod.Get && method != HttpMethod.Head)
            {
                request.Content = spec.Content();
            }

            var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            if (!IsRedirect(response.StatusCode) || response.Headers.Location is null)
            {
                return response;
            }

            var location = response.Headers.Location;
            var target = location.IsAbsoluteUri ? location : new Uri(uri, location);
            var status = response.StatusCode;
            response.Dispose();
            if (hop >= MaxRedirects)
            {
                throw new RegistryException($"{endpoint}: too many redirects{For(spec)} (last to {target.GetLeftPart(UriPartial.Path)})");
            }

            if (target.Scheme != Uri.UriSchemeHttps && target.Scheme != Uri.UriSchemeHttp)
            {
                throw new RegistryException($"{endpoint}: redirected to an unsupported URL scheme '{target.Scheme}'{For(spec)}");
            }

            if (target.Scheme == Uri.UriSchemeHttp && uri.Scheme == Uri.UriSchemeHttps
                && !RegistryHosts.AllowsPlainHttp(target.Authority, _settings.InsecureRegistries))
            {
                throw new RegistryException($"{endpoint}: refused a redirect from HTTPS to plain HTTP ({target.GetLeftPart(UriPartial.Path)}){For(spec)}");
            }

            if (status == HttpStatusCode.SeeOther || ((status is HttpStatusCode.Moved or HttpStatusCode.Found) && method == HttpMethod.Post))
            {
                method = HttpMethod.Get;
            }

            uri = target;
        }
    }

    private static bool IsRedirect(HttpStatusCode status) =>
        status is HttpStatusCode.MovedPermanently or HttpStatusCode.Found or HttpStatusCode.SeeOther
            or HttpStatusCode.TemporaryRedirect or HttpStatusCode.PermanentRedirect;

    private void ForgetTokens(RegistryEndpoint endpoint)
    {
        var prefix = endpoint.BaseUri.AbsoluteUri + " ";
        foreach (var key in _tokens.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).ToList())
        {
            _tokens.TryRemove(key, out _);
        }
    }

    private async Task<AuthenticationHeaderValue?> AuthorizationAsync(RegistryEndpoint endpoint, IReadOnlyList<string> scopes, CancellationToken cancellationToken)
    {
        var challenges = await ChallengesAsync(endpoint, cancellationToken).ConfigureAwait(false);
        if (challenges.Count == 0)
        {
            return null;
        }

        var credential = await _settings.Credentials.GetAsync(endpoint.CredentialHost, cancellationToken).ConfigureAwait(false);
        var bearer = challenges.FirstOrDefault(c => c.IsBearer);
        if (bearer is not null)
        {
            if (credential?.RegistryToken is { } fixedToken)
            {
                return new AuthenticationHeaderValue("Bearer", fixedToken);
            }

            var sorted = scopes.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
            var key = endpoint.BaseUri.AbsoluteUri + " " + string.Join(' ', sorted);
            var lazy = _tokens.GetOrAdd(key, _ => new Lazy<Task<string>>(() => FetchTokenAsync(endpoint, bearer, sorted, credential, CancellationToken.None)));
            try
            {
                return new AuthenticationHeaderValue("Bearer", await lazy.Value.WaitAsync(cancellationToken).ConfigureAwait(false));
            }
            catch (Exception) when (!cancellationToken.IsCancellationRequested)
            {
                _tokens.TryRemove(key, out _);
                throw;
            }
        }

        if (challenges.Any(c => c.IsBasic) && credential is { Username.Length: > 0 })
        {
            return new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(credential.Username + ":" + credential.Password)));
        }

        return null;
    }

    /// <summary>The challenges of <c>GET /v2/</c> (none when it answers 200), asked once per endpoint.</summary>
    private async Task<IReadOnlyList<AuthChallenge>> ChallengesAsync(RegistryEndpoint endpoint, CancellationToken cancellationToken)
    {
        var key = endpoint.BaseUri.AbsoluteUri;
        var task = _challenges.GetOrAdd(key, _ => PingAsync(endpoint));
        try
        {
            return await task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            _challenges.TryRemove(new KeyValuePair<string, Task<IReadOnlyList<AuthChallenge>>>(key, task));
            throw;
        }
    }

    private async Task<IReadOnlyList<AuthChallenge>> PingAsync(RegistryEndpoint endpoint)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var request = new HttpRequestMessage(HttpMethod.Get, endpoint.Api(""));
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.Unauthorized)
        {
            return AuthChallenge.Parse(response.Headers.WwwAuthenticate.Select(h => h.ToString()));
        }

        if (response.IsSuccessStatusCode)
        {
            return [];
        }

        if (IsTransientStatus(response.StatusCode))
        {
            throw new HttpRequestException($"GET {endpoint.Api("")} answered {(int)response.StatusCode} {response.ReasonPhrase}", null, response.StatusCode);
        }

        throw new RegistryException($"{endpoint} is not a registry: GET {endpoint.Api("")} answered {(int)response.StatusCode} {response.ReasonPhrase}")
        {
            StatusCode = (int)response.StatusCode,
        };
    }

    private async Task<string> FetchTokenAsync(RegistryEndpoint endpoint, AuthChallenge challenge, IReadOnlyList<string> scopes, RegistryCredential? credential,
        CancellationToken cancellationToken)
    {
        var realm = challenge["realm"];
        if (string.IsNullOrEmpty(realm) || !Uri.TryCreate(realm, UriKind.Absolute, out var realmUri))
        {
            throw new RegistryException($"{endpoint}: the Bearer challenge has no usable realm ('{realm}')");
        }

        if (realmUri.Scheme == Uri.UriSchemeHttp && credential is not null && !RegistryHosts.AllowsPlainHttp(realmUri.Authority, _settings.InsecureRegistries))
        {
            throw new RegistryException($"{endpoint}: refusing to send credentials to the token service {realm} over plain HTTP");
        }

        var service = challenge["service"];
        for (var attempt = 1; ; attempt++)
        {
            using var request = credential?.IdentityToken is { } refresh
                ? new HttpRequestMessage(HttpMethod.Post, realmUri) { Content = new FormUrlEncodedContent(OAuthForm(service, scopes, refresh)) }
                : new HttpRequestMessage(HttpMethod.Get, TokenUri(realmUri, service, scopes, credential?.Username));
            if (credential?.IdentityToken is null && credential is { Username.Length: > 0 })
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Basic",
                    Convert.ToBase64String(Encoding.UTF8.GetBytes(credential.Username + ":" + credential.Password)));
            }

            HttpResponseMessage response;
            try
            {
                response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (IsTransient(e, cancellationToken))
            {
                if (attempt >= _settings.MaxAttempts)
                {
                    throw new RegistryException($"{endpoint}: cannot reach the token service {realmUri.GetLeftPart(UriPartial.Path)}: {Cause(e)}", e);
                }

                await DelayAsync(attempt, null, cancellationToken).ConfigureAwait(false);
                continue;
            }

            using (response)
            {
                if (IsTransientStatus(response.StatusCode) && attempt < _settings.MaxAttempts)
                {
                    await DelayAsync(attempt, RetryAfter(response), cancellationToken).ConfigureAwait(false);
                    continue;
                }

                var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
                // OAuth2 refuses a bad grant (a revoked refresh token, a wrong password) with 400 invalid_grant (RFC 6749 5.2).
                if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden
                    || (response.StatusCode == HttpStatusCode.BadRequest && body.Contains("invalid_grant", StringComparison.Ordinal)))
                {
                    var who = credential is null ? " (no credentials configured)"
                        : credential.IdentityToken is not null ? " with the identity token (refresh token) of the docker config"
                        : $" for user '{credential.Username}'";
                    throw new RegistryException(
                        $"{endpoint}: authentication failed{who}: "
                        + $"the token service answered {(int)response.StatusCode} {Brief(body)}")
                    {
                        StatusCode = (int)response.StatusCode,
                    };
                }

                if (!response.IsSuccessStatusCode)
                {
                    throw new RegistryException($"{endpoint}: the token service answered {(int)response.StatusCode} {response.ReasonPhrase}: {Brief(body)}")
                    {
                        StatusCode = (int)response.StatusCode,
                    };
                }

                try
                {
                    var json = JsonNode.Parse(body) as JsonObject;
                    var token = (json?["token"] ?? json?["access_token"])?.GetValue<string>();
                    if (!string.IsNullOrEmpty(token))
                    {
                        return token;
                    }
                }
                catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or FormatException)
                {
                    throw new RegistryException($"{endpoint}: the token service answered something other than a token: {Brief(body)}", e);
                }

                throw new RegistryException($"{endpoint}: the token service's answer holds no token");
            }
        }
    }

    private static Uri TokenUri(Uri realm, string? service, IReadOnlyList<string> scopes, string? account)
    {
        var query = new StringBuilder(realm.Query.TrimStart('?'));
        void Add(string name, string value)
        {
            if (query.Length > 0)
            {
                query.Append('&');
            }

            query.Append(name).Append('=').Append(Uri.EscapeDataString(value));
        }

        if (!string.IsNullOrEmpty(service))
        {
            Add("service", service);
        }

        foreach (var scope in scopes)
        {
            Add("scope", scope);
        }

        if (!string.IsNullOrEmpty(account))
        {
            Add("account", account);
        }

        return new UriBuilder(realm) { Query = query.ToString() }.Uri;
    }

    private static List<KeyValuePair<string, string>> OAuthForm(string? service, IReadOnlyList<string> scopes, string refreshToken)
    {
        var form = new List<KeyValuePair<string, string>>
        {
            new("grant_type", "refresh_token"),
            new("refresh_token", refreshToken),
            new("client_id", "layertool"),
            new("access_type", "offline"),
        };
        if (!string.IsNullOrEmpty(service))
        {
            form.Add(new("service", service));
        }

        if (scopes.Count > 0)
        {
            form.Add(new("scope", string.Join(' ', scopes)));
        }

        return form;
    }

    /// <summary>The start of a body for a message, on one line.</summary>
    public static string Brief(string body)
    {
        var text = body.ReplaceLineEndings(" ").Trim();
        return text.Length > 300 ? text[..300] + "…" : text;
    }

    /// <summary>The registry's error body (<c>{"errors":[{"code","message"}]}</c>) as (code, message), if it is one.</summary>
    public static (string? Code, string? Message) ParseErrors(string body)
    {
        try
        {
            if (JsonNode.Parse(body) is JsonObject json && json["errors"] is JsonArray { Count: > 0 } errors && errors[0] is JsonObject first)
            {
                var code = first["code"] is JsonValue c && c.TryGetValue<string>(out var cs) ? cs : null;
                var message = first["message"] is JsonValue m && m.TryGetValue<string>(out var ms) ? ms : null;
                return (code, message);
            }
        }
        catch (System.Text.Json.JsonException)
        {
        }

        return (null, null);
    }

    /// <summary>Turns a failed answer into a <see cref="RegistryException"/> that says what was asked and what came back.</summary>
    public static async Task<RegistryException> ErrorAsync(HttpResponseMessage response, RegistryEndpoint endpoint, string doing, CancellationToken cancellationToken)
    {
        string body;
        try
        {
            body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            body = "";
        }

        var (code, message) = ParseErrors(body);
        var status = (int)response.StatusCode;
        var detail = code is not null ? $"{code}: {message}" : $"{status} {response.ReasonPhrase}{(body.Length > 0 ? ": " + Brief(body) : "")}";
        var text = response.StatusCode switch
        {
            HttpStatusCode.Unauthorized => $"{endpoint}: authentication required to {doing} ({detail}); log in (docker login) or pass --creds",
            HttpStatusCode.Forbidden => $"{endpoint}: access denied to {doing} ({detail})",
            HttpStatusCode.NotFound => $"{endpoint}: not found: {doing} ({detail})",
            _ => $"{endpoint}: cannot {doing}: {detail}",
        };
        return new RegistryException(text) { StatusCode = status, ErrorCode = code };
    }
}

/// <summary>Parses numbers in headers.</summary>
internal static class HeaderNumbers
{
    public static long? Long(string? text) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : null;
}
