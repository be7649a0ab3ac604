using System.Diagnostics;
using System.Text;

namespace LayerTool.IntegrationTests.Build;

/// <summary>
/// A real <c>layertool</c> process (<c>dotnet layertool.dll</c>, the CLI built next to the tests), its output
/// collected line by line, so a test can wait for a line, send it a signal and read its exit code.
/// </summary>
public sealed class LayerToolProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _out = new();
    private readonly StringBuilder _err = new();

    private LayerToolProcess(Process process)
    {
        _process = process;
    }

    /// <summary>The CLI copied into the test output by the project reference.</summary>
    public static string DllPath { get; } = Path.Combine(AppContext.BaseDirectory, "layertool.dll");

    public int Id => _process.Id;

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

    /// <summary>
    /// Starts <c>layertool ARGS</c> with its own DOCKER_HOST and cache directory. <c>env --default-signal=INT</c>
    /// undoes an ignored SIGINT inherited from the test runner (a shell's background job ignores it), so the
    /// process reacts to SIGINT as it does in a terminal.
    /// </summary>
    public static LayerToolProcess Start(IEnumerable<string> args, string dockerHost, string cacheHome, string workingDirectory)
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
        psi.Environment["DOCKER_HOST"] = dockerHost;
        psi.Environment["XDG_CACHE_HOME"] = cacheHome;
        psi.Environment["DOTNET_NOLOGO"] = "1";
        var process = new Process { StartInfo = psi };
        var result = new LayerToolProcess(process);
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

    /// <summary>Waits until standard output has a line equal to <paramref name="line"/>; fails if the process ends first or the time runs out.</summary>
    public async Task WaitForLineAsync(string line, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!StdOut.Split('\n').Contains(line))
        {
            if (_process.HasExited && !StdOut.Split('\n').Contains(line))
                throw new ShouldAssertException($"layertool exited ({_process.ExitCode}) before printing '{line}'.\nstdout:\n{StdOut}\nstderr:\n{StdErr}");
            if (DateTime.UtcNow > deadline)
                throw new ShouldAssertException($"layertool printed no '{line}' within {timeout.TotalSeconds} s.\nstdout:\n{StdOut}\nstderr:\n{StdErr}");
            await Task.Delay(50);
        }
    }

    /// <summary>Sends a signal (<c>INT</c>, <c>TERM</c>) with kill(1).</summary>
    public async Task SignalAsync(string signal)
    {
        var kill = await EngineFixture.RunAsync("kill", [$"-{signal}", Id.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            AppContext.BaseDirectory, CancellationToken.None);
        kill.ExitCode.ShouldBe(0, kill.StdErr);
    }

    /// <summary>Sends a signal unless the process is gone (then kill(1) fails, which is fine here).</summary>
    public async Task TrySignalAsync(string signal)
    {
        if (_process.HasExited) return;
        await EngineFixture.RunAsync("kill", [$"-{signal}", Id.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            AppContext.BaseDirectory, CancellationToken.None);
    }

    /// <summary>Whether the process ends within <paramref name="time"/>.</summary>
    public async Task<bool> HasExitedWithinAsync(TimeSpan time)
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

    /// <summary>The exit code; a process still running after <paramref name="timeout"/> is killed and the test fails (it hung).</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            throw new ShouldAssertException($"layertool did not exit within {timeout.TotalSeconds} s (it hung).\nstdout:\n{StdOut}\nstderr:\n{StdErr}");
        }
        return _process.ExitCode;
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
