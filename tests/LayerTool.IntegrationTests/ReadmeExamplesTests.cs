using System.Text;
using System.Text.RegularExpressions;
using LayerTool.IntegrationTests.Build;

namespace LayerTool.IntegrationTests;

/// <summary>
/// README.md's shell examples, then those of docs/recipes.md, run as they are written, so the front page cannot go
/// stale: every <c>```sh</c> block, in order, in one bash script with <c>set -euo pipefail</c>, with the CLI built next to
/// the tests on PATH as <c>layertool</c>, against the test engine, in a scratch directory holding a copy of
/// <c>examples/</c>. A block may be left out only with a reason, on the line before it:
/// <c>&lt;!-- not run: why --&gt;</c>.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed partial class ReadmeExamplesTests(EngineFixture engine)
{
    private const string NotRunMarker = "<!-- not run:";

    /// <summary>The pages whose blocks run, in order (the recipes page goes on from where the README leaves off).</summary>
    private static readonly string[] Pages = ["README.md", "docs/recipes.md"];

    [Theory]
    [InlineData("README.md", 4)]
    [InlineData("docs/recipes.md", 2)]
    public void Blocks_are_found_and_every_skipped_block_gives_a_reason(string page, int runnable)
    {
        var blocks = ReadBlocks(File.ReadAllText(Path.Combine(EngineFixture.RepoRoot, page)));
        blocks.Count(b => b.Run).ShouldBeGreaterThanOrEqualTo(runnable, $"the recipes of {page} are its runnable examples");
        foreach (var b in blocks.Where(b => !b.Run)) b.Reason.ShouldNotBeNullOrWhiteSpace($"the block at {page}:{b.Line} is skipped without a reason");
    }

    [Fact]
    public async Task Readme_sh_blocks_run_as_written()
    {
        var texts = Pages.Select(p => (Page: p, Text: File.ReadAllText(Path.Combine(EngineFixture.RepoRoot, p)))).ToList();
        var readme = string.Concat(texts.Select(t => t.Text));
        var blocks = texts.SelectMany(t => ReadBlocks(t.Text).Where(b => b.Run).Select(b => (t.Page, Block: b))).ToList();
        var work = Directory.CreateTempSubdirectory("layertool-readme-");
        var before = await TagsAsync();
        try
        {
            CopyDirectory(Path.Combine(EngineFixture.RepoRoot, "examples"), Path.Combine(work.FullName, "examples"));
            var bin = Directory.CreateDirectory(Path.Combine(work.FullName, ".bin")).FullName;
            var shim = Path.Combine(bin, "layertool");
            File.WriteAllText(shim, $"#!/bin/sh\nexec dotnet '{LayerToolProcess.DllPath}' \"$@\"\n");
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(shim, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

            var script = new StringBuilder("set -euo pipefail\n");
            foreach (var (page, b) in blocks)
                script.Append("echo '>>> ").Append(page).Append(':').Append(b.Line).Append("' >&2\n").Append(b.Text).Append('\n');
            var scriptPath = Path.Combine(work.FullName, ".readme.sh");
            File.WriteAllText(scriptPath, script.ToString());

            var env = new Dictionary<string, string>
            {
                ["PATH"] = bin + ":" + Environment.GetEnvironmentVariable("PATH"),
                ["DOCKER_HOST"] = engine.DockerHost,
                ["XDG_CACHE_HOME"] = Path.Combine(work.FullName, ".cache"),
                ["DOTNET_NOLOGO"] = "1",
            };
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(8));
            var run = await EngineFixture.RunAsync("bash", [scriptPath], work.FullName, timeout.Token, environment: env);
            run.ExitCode.ShouldBe(0, $"an example failed (the last '>>> PAGE:N' names its block)\nstdout:\n{run.StdOut}\nstderr:\n{run.StdErr}");
            File.Exists(Path.Combine(work.FullName, "recipe-app.tar")).ShouldBeTrue("the squash recipe writes recipe-app.tar");
            File.Exists(Path.Combine(work.FullName, "out-oci", "index.json")).ShouldBeTrue("the archive recipe writes an OCI layout");
        }
        finally
        {
            // Remove the tags the examples made (those new since the start that the README or an example names).
            var named = readme + string.Concat(Directory.EnumerateFiles(Path.Combine(EngineFixture.RepoRoot, "examples"), "Dockerfile", SearchOption.AllDirectories).Select(File.ReadAllText));
            foreach (var tag in (await TagsAsync()).Except(before).Where(t => named.Contains(t, StringComparison.Ordinal)))
                await engine.DockerAsync(["image", "rm", tag]);
            work.Delete(recursive: true);
        }
    }

    private async Task<HashSet<string>> TagsAsync() =>
        (await engine.DockerAsync(["images", "--format", "{{.Repository}}:{{.Tag}}"]))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(t => !t.Contains("<none>", StringComparison.Ordinal))
            .ToHashSet(StringComparer.Ordinal);

    internal sealed record Block(int Line, string Text, bool Run, string? Reason);

    /// <summary>The fenced <c>sh</c> blocks of a markdown text, each with whether it runs and why not.</summary>
    internal static List<Block> ReadBlocks(string markdown)
    {
        var lines = markdown.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        var blocks = new List<Block>();
        for (var i = 0; i < lines.Length; i++)
        {
            if (lines[i].Trim() != "```sh") continue;
            var start = i;
            var body = new StringBuilder();
            for (i++; i < lines.Length && lines[i].Trim() != "```"; i++) body.Append(lines[i]).Append('\n');
            var previous = start > 0 ? lines[start - 1].Trim() : "";
            string? reason = null;
            if (previous.StartsWith(NotRunMarker, StringComparison.Ordinal))
                reason = NotRunReason().Match(previous) is { Success: true } m ? m.Groups[1].Value.Trim() : "";
            blocks.Add(new Block(start + 1, body.ToString(), reason is null, reason));
        }
        return blocks;
    }

    [GeneratedRegex(@"^<!-- not run:(.*)-->$")]
    private static partial Regex NotRunReason();

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var dir in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, dir)));
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
            File.Copy(file, Path.Combine(to, Path.GetRelativePath(from, file)));
    }
}
