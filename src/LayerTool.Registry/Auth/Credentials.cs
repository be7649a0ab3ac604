using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;

namespace LayerTool.Registry.Auth;

/// <summary>Credentials for one registry: a user name and password, or an identity (refresh) token.</summary>
/// <param name="Username">The user name (empty with an identity token alone).</param>
/// <param name="Password">The password or secret.</param>
public sealed record RegistryCredential(string Username, string Password)
{
    /// <summary>An OAuth2 refresh token (docker config <c>identitytoken</c>); with one, tokens are asked for by POST.</summary>
    public string? IdentityToken { get; init; }

    /// <summary>A bearer token to send as it is (docker config <c>registrytoken</c>).</summary>
    public string? RegistryToken { get; init; }

    /// <summary>Never prints the secret.</summary>
    public override string ToString() => $"credentials of '{Username}'";
}

/// <summary>Where the credentials of a registry come from.</summary>
public interface ICredentialSource
{
    /// <summary>The credentials for <paramref name="registry"/> (a host[:port]; <c>docker.io</c> for Docker Hub), or null.</summary>
    Task<RegistryCredential?> GetAsync(string registry, CancellationToken cancellationToken);
}

/// <summary>Anonymous access everywhere.</summary>
public sealed class NoCredentials : ICredentialSource
{
    public static NoCredentials Instance { get; } = new();

    public Task<RegistryCredential?> GetAsync(string registry, CancellationToken cancellationToken) => Task.FromResult<RegistryCredential?>(null);
}

/// <summary>Credentials given for one registry (<c>--creds user:pass</c>), the rest from another source.</summary>
public sealed class FixedCredentials(string registry, RegistryCredential credential, ICredentialSource fallback) : ICredentialSource
{
    /// <summary>Parses <c>user:password</c> (the password may hold colons; an empty password is allowed).</summary>
    public static RegistryCredential ParseUserPassword(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var colon = value.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0)
        {
            throw new RegistryException("--creds must be USER:PASSWORD");
        }

        return new RegistryCredential(value[..colon], value[(colon + 1)..]);
    }

    public Task<RegistryCredential?> GetAsync(string registry, CancellationToken cancellationToken) =>
        string.Equals(RegistryHosts.Normalize(registry), RegistryHosts.Normalize(_registry), StringComparison.OrdinalIgnoreCase)
            ? Task.FromResult<RegistryCredential?>(credential)
            : fallback.GetAsync(registry, cancellationToken);

    private readonly string _registry = registry;
}

/// <summary>
/// The credentials docker itself uses, from its <c>config.json</c>: a credential helper named by
/// <c>credHelpers[host]</c> or <c>credsStore</c>, run as docker runs it (<c>docker-credential-NAME get</c>
/// with the server address on stdin), else the <c>auths</c> entry (<c>auth</c> = base64 of user:password,
/// or <c>identitytoken</c>).
/// </summary>
public sealed class DockerConfigCredentials : ICredentialSource
{
    private readonly JsonObject? _config;
    private readonly string _path;
    private readonly Func<string, string, CancellationToken, Task<(int ExitCode, string Output, string Error)>> _runHelper;

    /// <param name="configPath">The <c>config.json</c> (it may not exist: then nothing is configured).</param>
    /// <param name="runHelper">Runs a helper program with some stdin (tests replace it); a process when null.</param>
    public DockerConfigCredentials(string configPath, Func<string, string, CancellationToken, Task<(int, string, string)>>? runHelper = null)
    {
        ArgumentNullException.ThrowIfNull(configPath);
        _path = configPath;
        _runHelper = runHelper ?? RunProcessAsync;
        if (File.Exists(configPath))
        {
            try
            {
                _config = JsonNode.Parse(File.ReadAllBytes(configPath)) as JsonObject
                          ?? throw new RegistryException($"{configPath}: not a JSON object");
            }
            catch (System.Text.Json.JsonException e)
            {
                throw new RegistryException($"{configPath}: invalid JSON: {e.Message}", e);
            }
        }
    }

    public async Task<RegistryCredential?> GetAsync(string registry, CancellationToken cancellationToken)
    {
        if (_config is null)
        {
            return null;
        }

        var host = RegistryHosts.Normalize(registry);
        var helper = (_config["credHelpers"] as JsonObject)?[host]?.GetValue<string>()
                     ?? (_config["credsStore"] as JsonValue)?.GetValue<string>();
        if (!string.IsNullOrEmpty(helper))
        {
            return await FromHelperAsync(helper, host, cancellationToken).ConfigureAwait(false);
        }

        if (_config["auths"] is not JsonObject auths)
        {
            return null;
        }

        foreach (var (key, value) in auths)
        {
            if (value is JsonObject entry && string.Equals(RegistryHosts.Normalize(key), host, StringComparison.OrdinalIgnoreCase))
            {
                return FromEntry(entry, key);
            }
        }

        return null;
    }

    private RegistryCredential? FromEntry(JsonObject entry, string key)
    {
        string? user = Text(entry, "username"), password = Text(entry, "password");
        var auth = Text(entry, "auth");
        if (!string.IsNullOrEmpty(auth))
        {
            string decoded;
            try
            {
                decoded = Encoding.UTF8.GetString(Convert.FromBase64String(auth));
            }
            catch (FormatException e)
            {
                throw new RegistryException($"{_path}: auths[\"{key}\"].auth is not base64: {e.Message}", e);
            }

            var colon = decoded.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0)
            {
                throw new RegistryException($"{_path}: auths[\"{key}\"].auth does not hold USER:PASSWORD");
            }

            (user, password) = (decoded[..colon], decoded[(colon + 1)..]);
        }

        var identity = Text(entry, "identitytoken");
        var token = Text(entry, "registrytoken");
        if (string.IsNullOrEmpty(user) && identity is null && token is null)
        {
            return null;
        }

        return new RegistryCredential(user ?? "", password ?? "") { IdentityToken = identity, RegistryToken = token };
    }

    private async Task<RegistryCredential?> FromHelperAsync(string helper, string host, CancellationToken cancellationToken)
    {
        var program = "docker-credential-" + helper;
        var server = RegistryHosts.CredentialKey(host);
        (int ExitCode, string Output, string Error) result;
        try
        {
            result = await _runHelper(program, server, cancellationToken).ConfigureAwait(false);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new RegistryException($"the credential helper {program} (from {_path}) cannot be run: {e.Message}", e);
        }

        if (result.ExitCode != 0)
        {
            var message = (result.Output + result.Error).Trim();
            if (message.Contains("credentials not found", StringComparison.OrdinalIgnoreCase))
            {
                return null;
            }

            throw new RegistryException($"the credential helper {program} failed for {server} (exit {result.ExitCode}): {message}");
        }

        JsonObject json;
        try
        {
            json = JsonNode.Parse(result.Output) as JsonObject ?? throw new RegistryException($"{program} printed no JSON object");
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new RegistryException($"the credential helper {program} printed invalid JSON: {e.Message}", e);
        }

        var user = Text(json, "Username") ?? "";
        var secret = Text(json, "Secret") ?? "";
        // Docker's convention: the user name "<token>" means the secret is an identity token.
        return user == "<token>" ? new RegistryCredential("", "") { IdentityToken = secret } : new RegistryCredential(user, secret);
    }

    private static string? Text(JsonObject json, string name) =>
        json[name] is JsonValue value && value.TryGetValue<string>(out var text) && text.Length > 0 ? text : null;

    private static async Task<(int, string, string)> RunProcessAsync(string program, string input, CancellationToken cancellationToken)
    {
        var psi = new ProcessStartInfo(program, "get")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(psi) ?? throw new RegistryException($"cannot start {program}");
        await process.StandardInput.WriteAsync(input.AsMemory(), cancellationToken).ConfigureAwait(false);
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var error = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        return (process.ExitCode, await output.ConfigureAwait(false), await error.ConfigureAwait(false));
    }
}

/// <summary>Registry host names as docker writes and matches them.</summary>
public static class RegistryHosts
{
    /// <summary>The key docker files Docker Hub's credentials under.</summary>
    public const string DockerHubKey = "https://index.docker.io/v1/";

    /// <summary>A registry name from a config key or URL: scheme and path dropped, Docker Hub's aliases folded to <c>docker.io</c>.</summary>
    public static string Normalize(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var host = key;
        var scheme = host.IndexOf("://", StringComparison.Ordinal);
        if (scheme >= 0)
        {
            host = host[(scheme + 3)..];
        }

        var slash = host.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            host = host[..slash];
        }

        host = host.ToLowerInvariant();
        return host is "index.docker.io" or "registry-1.docker.io" or "registry.hub.docker.com" ? "docker.io" : host;
    }

    /// <summary>The server address a credential helper is asked about (Docker Hub's legacy URL for docker.io).</summary>
    public static string CredentialKey(string registry) => Normalize(registry) == "docker.io" ? DockerHubKey : Normalize(registry);

    /// <summary>Whether plain HTTP is allowed: loopback names and addresses, and the hosts named insecure.</summary>
    public static bool AllowsPlainHttp(string authority, IReadOnlyList<string> insecure)
    {
        ArgumentNullException.ThrowIfNull(authority);
        ArgumentNullException.ThrowIfNull(insecure);
        var host = HostOf(authority);
        if (host == "localhost" || (System.Net.IPAddress.TryParse(host, out var ip) && System.Net.IPAddress.IsLoopback(ip)))
        {
            return true;
        }

        return insecure.Any(i => string.Equals(Normalize(i), authority, StringComparison.OrdinalIgnoreCase)
                                 || string.Equals(Normalize(i), host, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>The host without the port (and without IPv6 brackets).</summary>
    public static string HostOf(string authority)
    {
        ArgumentNullException.ThrowIfNull(authority);
        if (authority.StartsWith('['))
        {
            var end = authority.IndexOf(']', StringComparison.Ordinal);
            return end > 0 ? authority[1..end] : authority;
        }

        var colon = authority.LastIndexOf(':');
        return (colon >= 0 ? authority[..colon] : authority).ToLowerInvariant();
    }
}
