using System.Diagnostics;
using System.Globalization;
using LayerTool.Docker;
using LayerTool.Docker.Dind;

namespace LayerTool.IntegrationTests.Plans;

/// <summary>
/// A private dockerd of a test's own on a unix socket, started as scripts/engine.sh starts the main one (no bridge,
/// no iptables, no forwarding), with its own data root under /var/lib and exec root under /run; busybox is copied in
/// from the main engine. Stopped (SIGTERM, then SIGKILL) and its directories removed on dispose. Needs root, as the
/// main test engine does.
/// </summary>
public sealed class PrivateEngine : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _dataRoot;
    private readonly string _execRoot;

    private PrivateEngine(Process process, string dataRoot, string execRoot, string socket, DockerConnection connection)
    {
        _process = process;
        _dataRoot = dataRoot;
        _execRoot = execRoot;
        Socket = socket;
        Connection = connection;
    }

    /// <summary>The engine's socket path.</summary>
    public string Socket { get; }

    /// <summary><c>unix://SOCKET</c>, as <c>--engine</c> takes it.</summary>
    public string Host => "unix://" + Socket;

    public DockerConnection Connection { get; }

    public static async Task<PrivateEngine> StartAsync(DockerConnection main, string name)
    {
        var id = $"{Environment.ProcessId.ToString(CultureInfo.InvariantCulture)}-{name}";
        var dataRoot = $"/var/lib/layertool-test-{id}";
        var execRoot = $"/run/layertool-test-{id}";
        var socket = $"/run/layertool-test-{id}.sock";
        Directory.CreateDirectory(dataRoot);
        Directory.CreateDirectory(execRoot);
        var psi = new ProcessStartInfo("dockerd")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in (string[])["--host", "unix://" + socket, "--data-root", dataRoot, "--exec-root", execRoot, "--pidfile", Path.Combine(execRoot, "dockerd.pid"),
                     "--bridge=none", "--iptables=false", "--ip-forward=false", "--ip-masq=false"])
            psi.ArgumentList.Add(a);
        var process = Process.Start(psi) ?? throw new InvalidOperationException("cannot start dockerd");
        var log = new System.Text.StringBuilder();
        process.OutputDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var watch = Stopwatch.StartNew();
        DockerConnection? connection = null;
        while (connection is null)
        {
            if (process.HasExited || watch.Elapsed > TimeSpan.FromSeconds(60))
            {
                if (!process.HasExited) process.Kill();
                string text;
                lock (log) text = log.ToString();
                throw new InvalidOperationException($"the private dockerd {name} did not answer:\n{text[Math.Max(0, text.Length - 3000)..]}");
            }
            if (File.Exists(socket))
            {
                try
                {
                    connection = await DockerConnection.ConnectAsync(new EngineSettings(new Uri("unix://" + socket)), CancellationToken.None);
                }
                catch (LayerTool.Docker.EngineException)
                {
                }
            }
            if (connection is null) await Task.Delay(200);
        }
        var engine = new PrivateEngine(process, dataRoot, execRoot, socket, connection);
        await ImageTransfer.CopyAsync(main, connection, ["busybox:latest"], CancellationToken.None);
        return engine;
    }

    public async ValueTask DisposeAsync()
    {
        Connection.Dispose();
        if (!_process.HasExited)
        {
            await EngineFixture.RunAsync("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)], "/", CancellationToken.None);
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try
            {
                await _process.WaitForExitAsync(wait.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }
        _process.Dispose();
        foreach (var dir in new[] { _dataRoot, _execRoot })
        {
            try
            {
                if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
        File.Delete(Socket);
    }
}

/// <summary>Two private engines for the <c>--engine</c> ×2 tests, started once for the class.</summary>
public sealed class TwoEnginesFixture : IAsyncLifetime
{
    public EngineFixture Main { get; } = new();

    public PrivateEngine First { get; private set; } = null!;

    public PrivateEngine Second { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        await Main.InitializeAsync();
        var first = PrivateEngine.StartAsync(Main.Connection, "a");
        var second = PrivateEngine.StartAsync(Main.Connection, "b");
        First = await first;
        Second = await second;
    }

    public async Task DisposeAsync()
    {
        if (First is not null) await First.DisposeAsync();
        if (Second is not null) await Second.DisposeAsync();
        await Main.DisposeAsync();
    }
}
