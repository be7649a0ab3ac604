using System.Diagnostics;
using System.Text.RegularExpressions;
using LayerTool.Build;
using LayerTool.Build.Planning;

namespace LayerTool.IntegrationTests.Planning;

/// <summary>
/// The tests' own BuildKit backend: Debian's docker 20.10 client (<c>DOCKER_BUILDKIT=1 /usr/bin/docker build</c>),
/// which drives the engine's embedded BuildKit. Cancelling kills the client, which ends the solve.
/// </summary>
public sealed partial class CliBuildKitBackend(string dockerHost, string contextDirectory) : IBuildBackend
{
    public const string Client = "/usr/bin/docker";

    public string Name => "buildkit-cli";

    /// <summary>Called when a build has started (the tests cancel from here).</summary>
    public Action<StandardBuild>? Started { get; set; }

    public async Task<StandardBuildResult> BuildAsync(StandardBuild build, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(build);
        var dir = Directory.CreateTempSubdirectory("lt-plan-build-").FullName;
        try
        {
            var dockerfile = Path.Combine(dir, "Dockerfile");
            var iid = Path.Combine(dir, "iid");
            await File.WriteAllTextAsync(dockerfile, build.Dockerfile, cancellationToken);
            var args = new List<string> { "build", "--progress", "plain", "-f", dockerfile, "--iidfile", iid };
            if (build.Target is { } t) args.AddRange(["--target", t]);
            if (build.NetworkMode is { } n) args.AddRange(["--network", n]);
            if (build.NoCache) args.Add("--no-cache");
            foreach (var (k, v) in build.BuildArgs) args.AddRange(["--build-arg", k + "=" + v]);
            foreach (var (k, v) in build.Labels) args.AddRange(["--label", k + "=" + v]);
            foreach (var tag in build.Tags) args.AddRange(["-t", tag]);
            args.Add(contextDirectory);
            var output = await RunAsync(args, build, cancellationToken);
            var steps = StepLine().Matches(output).Select(m => m.Groups[1].Value).Distinct().Count();
            var cached = CachedLine().Count(output);
            return new StandardBuildResult((await File.ReadAllTextAsync(iid, cancellationToken)).Trim(), steps, cached);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private async Task<string> RunAsync(List<string> args, StandardBuild build, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(Client) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["DOCKER_HOST"] = dockerHost;
        psi.Environment["DOCKER_BUILDKIT"] = "1";
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start the docker client");
        var stdout = p.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = p.StandardError.ReadToEndAsync(CancellationToken.None);
        Started?.Invoke(build);
        try
        {
            await p.WaitForExitAsync(ct);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync(CancellationToken.None);
            throw;
        }
        var errors = await stderr;
        if (p.ExitCode != 0)
        {
            // The client's last line says what failed: "executor failed running [/bin/sh -c exit 3]: exit code: 3".
            var error = errors.Split('\n').LastOrDefault(l => l.Trim().Length > 0) ?? $"exit code {p.ExitCode}";
            throw new BuildException($"{build.Description}: {error.Trim()}");
        }
        return await stdout + errors;
    }

    [GeneratedRegex(@"^#(\d+) \[", RegexOptions.Multiline)]
    private static partial Regex StepLine();

    [GeneratedRegex(@"^#\d+ CACHED", RegexOptions.Multiline)]
    private static partial Regex CachedLine();
}

/// <summary>The one place the planner's integration tests get their backend (the lead swaps in the API backend here).</summary>
public static class PlanBackends
{
    public static CliBuildKitBackend Create(EngineFixture engine, string contextDirectory) => new(engine.DockerHost, contextDirectory);
}
