using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace LayerTool.IntegrationTests.Registry;

/// <summary>
/// A real registry for the tests: Debian's docker-registry (distribution 2.8), installed by
/// <c>scripts/registry.sh</c> when missing, started on 127.0.0.1 and a free port with filesystem storage in a
/// temp directory, optionally behind htpasswd Basic auth; stopped and deleted on dispose.
/// </summary>
public sealed class RegistryServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _root;

    private RegistryServer(Process process, string root, int port)
    {
        _process = process;
        _root = root;
        Port = port;
    }

    public int Port { get; }

    /// <summary><c>127.0.0.1:PORT</c>, as references name it.</summary>
    public string Host => $"127.0.0.1:{Port}";

    public static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>Starts a registry; with <paramref name="user"/> and <paramref name="password"/>, behind htpasswd Basic auth.</summary>
    public static async Task<RegistryServer> StartAsync(string? user = null, string? password = null)
    {
        var install = await EngineFixture.RunAsync(Path.Combine(EngineFixture.RepoRoot, "scripts", "registry.sh"), ["install"], EngineFixture.RepoRoot, CancellationToken.None);
        if (install.ExitCode != 0) throw new InvalidOperationException($"scripts/registry.sh install failed:\n{install.StdErr}");
        var binary = install.StdOut.Trim();
        var root = Directory.CreateTempSubdirectory("layertool-registry-").FullName;
        var port = FreePort();
        var auth = "";
        if (user is not null)
        {
            var htpasswd = await EngineFixture.RunAsync("htpasswd", ["-Bbn", user, password ?? ""], root, CancellationToken.None);
            if (htpasswd.ExitCode != 0) throw new InvalidOperationException($"htpasswd failed: {htpasswd.StdErr}");
            await File.WriteAllTextAsync(Path.Combine(root, "htpasswd"), htpasswd.StdOut);
            auth = $"auth:\n  htpasswd:\n    realm: layertool-test\n    path: {root}/htpasswd\n";
        }

        var config = Path.Combine(root, "config.yml");
        await File.WriteAllTextAsync(config,
            $"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {root}/data\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}");
        var psi = new ProcessStartInfo(binary) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        psi.ArgumentList.Add("serve");
        psi.ArgumentList.Add(config);
        var process = Process.Start(psi) ?? throw new InvalidOperationException("cannot start docker-registry");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new RegistryServer(process, root, port);
        using var http = new HttpClient();
        for (var i = 0; i < 100; i++)
        {
            try
            {
                using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/v2/"));
                return server;
            }
            catch (HttpRequestException)
            {
                if (process.HasExited) break;
                await Task.Delay(100);
            }
        }

        await server.DisposeAsync();
        throw new InvalidOperationException($"docker-registry did not start on port {port}");
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                await _process.WaitForExitAsync();
            }
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
