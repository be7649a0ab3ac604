using LayerTool.IntegrationTests.Build;

namespace LayerTool.IntegrationTests.BuildKit;

/// <summary>
/// <c>layertool build --builder buildkit</c> as a process, with TAG and COMPRESS compiled by the planner onto the
/// engine's BuildKit through the API backend: the TAG'd image is the one BuildKit gives the truncated file,
/// COMPRESS leaves the base's layers plus one, and no temporary tag of the plan is left; <c>--plan</c> runs nothing.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class BuildKitPlanCliTests(EngineFixture engine) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lt-bk-plan-").FullName;
    private readonly string _cache = Directory.CreateTempSubdirectory("lt-bk-plan-cache-").FullName;
    private readonly string _id = Guid.NewGuid().ToString("N")[..12];

    private string Final => $"layertool-bk-plan:{_id}";

    private string Tagged => $"layertool-bk-plan-tag:{_id}";

    private string Truncated => $"layertool-bk-plan-truncated:{_id}";

    public void Dispose()
    {
        foreach (var tag in new[] { Final, Tagged, Truncated })
            EngineFixture.RunAsync("docker", ["rmi", tag], _dir, CancellationToken.None, null, new Dictionary<string, string> { ["DOCKER_HOST"] = engine.DockerHost })
                .GetAwaiter().GetResult();
        Directory.Delete(_dir, true);
        Directory.Delete(_cache, true);
    }

    private string Dockerfile => $"""
        FROM busybox:latest
        ARG GREETING=hello
        RUN mkdir /app && echo "$GREETING" > /app/a && echo one > /app/gone
        TAG {Tagged}
        RUN echo two > /app/b && rm /app/gone
        COMPRESS
        RUN echo "$GREETING again" > /app/c
        CMD ["cat", "/app/c"]
        """ + "\n";

    [Fact]
    public async Task TAG_and_COMPRESS_run_on_BuildKit_and_leave_only_what_was_asked_for()
    {
        await File.WriteAllTextAsync(Path.Combine(_dir, "Dockerfile"), Dockerfile);
        using var build = LayerToolProcess.Start(["build", "--builder", "buildkit", "--progress", "plain", "--network", "none", "-t", Final, _dir], engine.DockerHost, _cache, _dir);
        var code = await build.WaitForExitAsync(TimeSpan.FromMinutes(4));
        code.ShouldBe(0, build.StdErr + build.StdOut);
        build.StdOut.ShouldContain($"TAG {Tagged}");
        build.StdOut.ShouldContain("COMPRESS (line 6)");

        // The TAG'd image is the one BuildKit gives the file truncated at the TAG (the cache makes it a replay).
        await File.WriteAllTextAsync(Path.Combine(_dir, "Dockerfile.truncated"), string.Join('\n', Dockerfile.Split('\n').Take(3)) + "\n");
        var reference = await EngineFixture.RunAsync("/usr/bin/docker", ["build", "--network", "none", "-q", "-f", Path.Combine(_dir, "Dockerfile.truncated"), "-t", Truncated, _dir],
            _dir, CancellationToken.None, null, new Dictionary<string, string> { ["DOCKER_HOST"] = engine.DockerHost, ["DOCKER_BUILDKIT"] = "1" });
        reference.ExitCode.ShouldBe(0, reference.StdErr);
        (await IdAsync(Tagged)).ShouldBe(await IdAsync(Truncated));

        // COMPRESS: busybox's layers plus one for everything up to line 6, then one for the RUN after it.
        var baseLayers = await LayersAsync("busybox:latest");
        (await LayersAsync(Final)).ShouldBe(baseLayers + 2);
        var run = await engine.DockerAsync(["run", "--rm", "--network", "none", Final]);
        run.Trim().ShouldBe("hello again");
        var listing = await engine.DockerAsync(["run", "--rm", "--network", "none", "--entrypoint", "ls", Final, "/app"]);
        listing.Split('\n', StringSplitOptions.RemoveEmptyEntries).ShouldBe(["a", "b", "c"]);

        // No temporary tag of the plan is left.
        (await engine.DockerAsync(["images", "--format", "{{.Repository}}"])).ShouldNotContain("layertool-plan-");
    }

    [Fact]
    public async Task Plan_prints_the_builds_and_runs_nothing()
    {
        await File.WriteAllTextAsync(Path.Combine(_dir, "Dockerfile"), Dockerfile);
        using var plan = LayerToolProcess.Start(["build", "--plan", "-t", Final, _dir], "unix:///nonexistent/docker.sock", _cache, _dir);
        var code = await plan.WaitForExitAsync(TimeSpan.FromMinutes(1));
        code.ShouldBe(0, plan.StdErr);
        plan.StdOut.ShouldContain(Tagged);
        plan.StdOut.ShouldContain("squash");
        (await engine.DockerAsync(["images", "-q", Final])).Trim().ShouldBeEmpty();
    }

    private async Task<string> IdAsync(string reference) =>
        (await engine.DockerAsync(["image", "inspect", "--format", "{{.Id}}", reference])).Trim();

    private async Task<int> LayersAsync(string reference) =>
        int.Parse((await engine.DockerAsync(["image", "inspect", "--format", "{{len .RootFS.Layers}}", reference])).Trim(), System.Globalization.CultureInfo.InvariantCulture);
}
