using LayerTool.Build;
using LayerTool.Build.Execution;
using LayerTool.Docker;

namespace LayerTool.IntegrationTests.Build;

/// <summary>
/// Every folder under Build/Conformance is built by <c>DOCKER_BUILDKIT=0 docker build</c> and by LayerTool's
/// executor; the two images must have the same config (the fields the issue names) and the same filesystem,
/// entry by entry (type, mode, owner, size, content hash, link target). A <c>flags</c> file holds docker flags
/// (<c>--build-arg=K=V</c>, <c>--target=NAME</c>), one per line. A folder with an <c>expect-error</c> file is a
/// build that must fail: docker's output and LayerTool's error must both contain that file's text. A folder with a
/// <c>prepare.sh</c> is copied to a temporary directory and the script runs there first (with <c>sh</c>), then is
/// removed: it makes what git cannot keep (setuid and setgid bits, sticky directories).
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class ConformanceTests(EngineFixture engine)
{
    public static string CasesDirectory => Path.Combine(EngineFixture.RepoRoot, "tests", "LayerTool.IntegrationTests", "Build", "Conformance");

    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var dir in Directory.GetDirectories(CasesDirectory).Order(StringComparer.Ordinal)) data.Add(Path.GetFileName(dir));
        return data;
    }

    [Fact]
    public void The_suite_has_at_least_forty_cases() => Cases().Count.ShouldBeGreaterThanOrEqualTo(40);

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Builds_the_same_image_as_docker(string name)
    {
        var caseDir = Path.Combine(CasesDirectory, name);
        var prepared = File.Exists(Path.Combine(caseDir, "prepare.sh")) ? await PrepareAsync(caseDir) : null;
        var dir = prepared ?? caseDir;
        var flags = File.Exists(Path.Combine(dir, "flags")) ? File.ReadAllLines(Path.Combine(dir, "flags")).Where(l => l.Length > 0).ToList() : [];
        var dockerTag = $"layertool-conformance/docker:{name}";
        var oursTag = $"layertool-conformance/ours:{name}";
        var expectedError = File.Exists(Path.Combine(dir, "expect-error")) ? File.ReadAllText(Path.Combine(dir, "expect-error")).Trim() : null;
        try
        {
            var docker = await EngineFixture.RunAsync("docker", ["build", "-q", "--force-rm", "--network", "none", "-t", dockerTag, .. flags, dir], dir, CancellationToken.None, null,
                new Dictionary<string, string> { ["DOCKER_HOST"] = engine.DockerHost, ["DOCKER_BUILDKIT"] = "0" });
            if (expectedError is not null)
            {
                docker.ExitCode.ShouldNotBe(0, "docker build was expected to fail");
                (docker.StdOut + docker.StdErr).ShouldContain(expectedError);
            }
            else docker.ExitCode.ShouldBe(0, $"docker build failed:\n{docker.StdErr}");

            var buildArgs = flags.Where(f => f.StartsWith("--build-arg=", StringComparison.Ordinal)).Select(f => f["--build-arg=".Length..].Split('=', 2))
                .ToDictionary(p => p[0], p => p[1]);
            var target = flags.FirstOrDefault(f => f.StartsWith("--target=", StringComparison.Ordinal))?["--target=".Length..];
            var output = new StringWriter();
            var executor = new BuildExecutor(new DockerBuildEngine(engine.Connection), null, null,
                new BuildOptions(dir, Tags: [oursTag], BuildArgs: buildArgs, Target: target, NetworkMode: "none", NoCache: true), new BuildLog(output, ProgressMode.Plain, false));
            if (expectedError is not null)
            {
                (await Should.ThrowAsync<BuildException>(() => executor.BuildAsync(CancellationToken.None))).Message.ShouldContain(expectedError);
                (await engine.DockerAsync(["ps", "-aq", "--filter", "name=" + BuildExecutor.ContainerNamePrefix + executor.BuildId])).Trim().ShouldBeEmpty("the build left containers behind");
                return;
            }
            await executor.BuildAsync(CancellationToken.None);
            (await engine.DockerAsync(["ps", "-aq", "--filter", "name=" + BuildExecutor.ContainerNamePrefix + executor.BuildId])).Trim().ShouldBeEmpty("the build left containers behind");

            var expected = await ImageSnapshot.TakeAsync(engine, dockerTag);
            var actual = await ImageSnapshot.TakeAsync(engine, oursTag);
            foreach (var field in ImageSnapshot.ConfigFields)
                actual.Config[field].ShouldBe(expected.Config[field], $"config field {field} differs");
            actual.LayerCount.ShouldBe(expected.LayerCount, "the images have different numbers of layers");
            var missing = expected.Files.Except(actual.Files).ToList();
            var extra = actual.Files.Except(expected.Files).ToList();
            (missing.Count + extra.Count).ShouldBe(0,
                $"filesystems differ:\n only docker: {string.Join("\n   ", missing.Take(20))}\n only ours: {string.Join("\n   ", extra.Take(20))}");
        }
        finally
        {
            await EngineFixture.RunAsync("docker", ["rmi", "-f", dockerTag, oursTag], dir, CancellationToken.None, null,
                new Dictionary<string, string> { ["DOCKER_HOST"] = engine.DockerHost });
            if (prepared is not null) Directory.Delete(prepared, recursive: true);
        }
    }

    /// <summary>A copy of the case (modes and links kept) in which its prepare.sh has run.</summary>
    private static async Task<string> PrepareAsync(string caseDir)
    {
        var temp = Path.Combine(Path.GetTempPath(), "layertool-conformance-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(temp);
        var copy = await EngineFixture.RunAsync("cp", ["-a", caseDir + "/.", temp], caseDir, CancellationToken.None);
        copy.ExitCode.ShouldBe(0, copy.StdErr);
        var script = await EngineFixture.RunAsync("sh", ["prepare.sh"], temp, CancellationToken.None);
        script.ExitCode.ShouldBe(0, script.StdErr);
        File.Delete(Path.Combine(temp, "prepare.sh"));
        return temp;
    }
}
