using System.Diagnostics;
using LayerTool.Docker;

namespace LayerTool.IntegrationTests;

/// <summary>
/// A real Docker engine for the integration tests. When none answers, the fixture runs
/// <c>scripts/engine.sh up</c>, which installs and starts a private, bridge-less dockerd and the
/// offline base images. An engine that cannot be had is a failure, never a skip.
/// </summary>
public sealed class EngineFixture : IAsyncLifetime
{
    /// <summary>Label on everything the tests create, so leaks are visible (docker ps -a --filter label=...).</summary>
    public const string TestLabel = "layertool.test";

    public static string RepoRoot { get; } = FindRepoRoot();

    public DockerConnection Connection { get; private set; } = null!;

    public string DockerHost { get; private set; } = "";

    public async Task InitializeAsync()
    {
        var up = await RunAsync(Path.Combine(RepoRoot, "scripts", "engine.sh"), ["up", "--debian"], RepoRoot, CancellationToken.None).ConfigureAwait(false);
        if (up.ExitCode != 0)
            throw new InvalidOperationException($"scripts/engine.sh up failed ({up.ExitCode}):\n{up.StdErr}");
        var line = up.StdOut.Split('\n').Last(l => l.StartsWith("export DOCKER_HOST=", StringComparison.Ordinal));
        DockerHost = line["export DOCKER_HOST=".Length..].Trim();
        Environment.SetEnvironmentVariable("DOCKER_HOST", DockerHost);
        Connection = await DockerConnection.ConnectAsync(new EngineSettings(new Uri(DockerHost)), CancellationToken.None).ConfigureAwait(false);
    }

    public Task DisposeAsync()
    {
        Connection?.Dispose();
        return Task.CompletedTask;
    }

    /// <summary>Runs the docker CLI against the test engine; throws with its stderr when it fails.</summary>
    public async Task<string> DockerAsync(IEnumerable<string> args, string? stdin = null, string? workingDirectory = null, CancellationToken cancellationToken = default)
    {
        var result = await RunAsync("docker", args, workingDirectory ?? RepoRoot, cancellationToken, stdin,
            new Dictionary<string, string> { ["DOCKER_HOST"] = DockerHost }).ConfigureAwait(false);
        if (result.ExitCode != 0)
            throw new InvalidOperationException($"docker {string.Join(' ', args)} failed ({result.ExitCode}):\n{result.StdErr}");
        return result.StdOut;
    }

    public sealed record ProcessResult(int ExitCode, string StdOut, string StdErr);

    public static async Task<ProcessResult> RunAsync(string fileName, IEnumerable<string> args, string workingDirectory,
        CancellationToken cancellationToken, string? stdin = null, IDictionary<string, string>? environment = null)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (environment is not null)
            foreach (var (k, v) in environment) psi.Environment[k] = v;
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {fileName}");
        if (stdin is not null)
        {
            await p.StandardInput.WriteAsync(stdin).ConfigureAwait(false);
            p.StandardInput.Close();
        }
        var stdout = p.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = p.StandardError.ReadToEndAsync(cancellationToken);
        await p.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        return new ProcessResult(p.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
    }

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "LayerTool.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("cannot find the repository root (LayerTool.sln)");
    }
}

/// <summary>One engine for all integration test classes.</summary>
[CollectionDefinition(Name)]
public sealed class EngineCollection : ICollectionFixture<EngineFixture>
{
    public const string Name = "engine";
}
