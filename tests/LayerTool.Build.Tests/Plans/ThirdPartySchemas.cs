using System.Diagnostics;

namespace LayerTool.Build.Tests.Plans;

/// <summary>
/// The third-party schemas of the export tests (GitLab's CI schema; Argo's Workflow validator), which may not be
/// committed: scripts/schemas.sh fetches them from the npm registry into a cache outside the repository. The
/// tests run the script themselves (it only fetches what is missing), or take the cache from
/// <c>LAYERTOOL_SCHEMAS</c>. A cache that cannot be had fails the tests; they never skip.
/// </summary>
internal static class ThirdPartySchemas
{
    private static readonly Lazy<string> Cache = new(Locate);

    /// <summary>The cache directory (gitlab-ci.json, argo/validate-argo-workflow.mjs, SOURCES.md).</summary>
    public static string Directory => Cache.Value;

    public static string GitLabCiSchema => Existing(Path.Combine(Directory, "gitlab-ci.json"));

    public static string ArgoValidator => Existing(Path.Combine(Directory, "argo", "validate-argo-workflow.mjs"));

    public static string RepoRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "LayerTool.sln")))
                dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("repository root not found");
        }
    }

    private static string Existing(string path) =>
        File.Exists(path) ? path : throw new FileNotFoundException($"{path} is missing: scripts/schemas.sh did not fetch it", path);

    private static string Locate()
    {
        if (Environment.GetEnvironmentVariable("LAYERTOOL_SCHEMAS") is { Length: > 0 } given)
            return given;
        var (exit, stdout, stderr) = Run("bash", [Path.Combine(RepoRoot, "scripts", "schemas.sh")], TimeSpan.FromMinutes(5));
        if (exit != 0)
            throw new InvalidOperationException($"scripts/schemas.sh failed ({exit}): {stderr}");
        return stdout.Trim();
    }

    /// <summary>Runs a program; its exit code and output.</summary>
    public static (int Exit, string Stdout, string Stderr) Run(string program, IEnumerable<string> args, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {program}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} did not finish in {timeout}");
        }

        return (process.ExitCode, stdout.GetAwaiter().GetResult(), stderr.GetAwaiter().GetResult());
    }
}
