using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace LayerTool.IntegrationTests.Reliability;

/// <summary>
/// A real <c>layertool</c> process (<c>dotnet layertool.dll</c>, the CLI built next to the tests) with the
/// environment a test gives it (DOCKER_HOST, XDG_CACHE_HOME, TMPDIR), to be signalled or killed and then looked at.
/// <c>env --default-signal=INT</c> undoes an ignored SIGINT inherited from the test runner.
/// </summary>
internal sealed class CliProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _out = new();
    private readonly StringBuilder _err = new();

    private CliProcess(Process process) => _process = process;

    public static string DllPath { get; } = Path.Combine(AppContext.BaseDirectory, "layertool.dll");

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public string StdOut
    {
        get
        {
            lock (_out) return _out.ToString();
        }
    }

    public string StdErr
    {
        get
        {
            lock (_err) return _err.ToString();
        }
    }

    public static CliProcess Start(IEnumerable<string> args, IReadOnlyDictionary<string, string> environment, string workingDirectory)
    {
        var psi = new ProcessStartInfo("env")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in (string[])["--default-signal=INT", "dotnet", DllPath, .. args]) psi.ArgumentList.Add(a);
        foreach (var (k, v) in environment) psi.Environment[k] = v;
        psi.Environment["DOTNET_NOLOGO"] = "1";
        var process = new Process { StartInfo = psi };
        var result = new CliProcess(process);
        process.OutputDataReceived += (_, e) => Append(result._out, e.Data);
        process.ErrorDataReceived += (_, e) => Append(result._err, e.Data);
        if (!process.Start()) throw new InvalidOperationException("cannot start layertool");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.StandardInput.Close();
        return result;
    }

    private static void Append(StringBuilder to, string? line)
    {
        if (line is null) return;
        lock (to) to.Append(line).Append('\n');
    }

    /// <summary>Sends a signal (<c>INT</c>, <c>TERM</c>, <c>KILL</c>) with kill(1); false when the process was gone already.</summary>
    public async Task<bool> SignalAsync(string signal)
    {
        if (_process.HasExited) return false;
        var kill = await EngineFixture.RunAsync("kill", [$"-{signal}", Id.ToString(CultureInfo.InvariantCulture)], AppContext.BaseDirectory, CancellationToken.None);
        return kill.ExitCode == 0;
    }

    /// <summary>Whether the process ends within <paramref name="time"/> (its output read to the end).</summary>
    public async Task<bool> WaitAsync(TimeSpan time)
    {
        using var cts = new CancellationTokenSource(time);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Waits until standard output has a line containing <paramref name="text"/>; false if the process ends first or the time runs out.</summary>
    public async Task<bool> WaitForOutputAsync(string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!StdOut.Contains(text, StringComparison.Ordinal))
        {
            if (_process.HasExited || DateTime.UtcNow > deadline) return StdOut.Contains(text, StringComparison.Ordinal);
            await Task.Delay(50);
        }
        return true;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Never started or already reaped.
        }
        _process.Dispose();
    }
}
