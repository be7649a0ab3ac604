using System.Globalization;
using LayerTool.Build.Plans.Run;
using LayerTool.IntegrationTests.Registry;
using LayerTool.IntegrationTests.Reliability;
using Xunit.Abstractions;

namespace LayerTool.IntegrationTests.Plans;

/// <summary>
/// <c>layertool plan run</c> and <c>plan status</c> on real engines: the 8-image plan of <see cref="PlanWorkspace"/>
/// (three levels below its root, a diamond) on two private dockerds (<c>--engine</c> ×2, parents handed over by image
/// transfer or through a local registry), run again (everything up to date), after a change in one context (only it
/// and its descendants rebuilt), with a failing image (only its descendants stopped), and cut by SIGINT (nothing left).
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class PlanRunTests : IClassFixture<TwoEnginesFixture>
{
    private readonly TwoEnginesFixture _engines;
    private readonly ITestOutputHelper _output;

    public PlanRunTests(TwoEnginesFixture engines, ITestOutputHelper output)
    {
        _engines = engines;
        _output = output;
    }

    private string[] TwoEngines => ["--engine", _engines.First.Host, "--engine", _engines.Second.Host];

    [Fact]
    public async Task Two_engines_build_everything_then_skip_everything_then_rebuild_only_a_changed_branch()
    {
        await using var plan = new PlanWorkspace(_engines.Main);
        plan.WriteStandardPlan();

        var first = await plan.PlanRunAsync(TwoEngines);
        _output.WriteLine(first.StdOut + first.StdErr);
        first.ExitCode.ShouldBe(0, first.StdErr);
        first.InState("built").ShouldBe([.. PlanWorkspace.Names.Order(StringComparer.Ordinal)]);
        first.Images.Values.Select(l => l.Engine).Distinct().Count().ShouldBe(2, "both engines took builds");
        // The results are in the local engine under their tags, with the diamond's two sides in app.
        (await plan.CatAsync(plan.Tag("app"), "/from-b.txt")).ShouldBe("lib-b");
        (await plan.CatAsync(plan.Tag("web"), "/base")).ShouldBe("base");
        (await plan.CatAsync(plan.Tag("cli"), "/tool.txt")).ShouldBe("tool");
        var label = (await _engines.Main.DockerAsync(["image", "inspect", "--format", $"{{{{index .Config.Labels \"{PlanState.InputsLabel}\"}}}}", plan.Tag("app")])).Trim();
        label.ShouldStartWith("sha256:");
        // Hand-offs between engines sent only the layers the target lacked (busybox was there).
        first.StdErr.ShouldContain("already there");
        // No hand-off tag is left in the engines.
        foreach (var host in new[] { _engines.Main.DockerHost, _engines.First.Host, _engines.Second.Host })
        {
            var left = await EngineFixture.RunAsync("docker", ["images", "-q", "--filter", "reference=layertool-plan/*"], plan.Root, CancellationToken.None, null,
                new Dictionary<string, string> { ["DOCKER_HOST"] = host });
            left.StdOut.Trim().ShouldBeEmpty(host);
        }

        var second = await plan.PlanRunAsync(TwoEngines);
        second.ExitCode.ShouldBe(0, second.StdErr);
        second.InState("up to date").Count.ShouldBe(PlanWorkspace.Names.Count, second.StdOut);
        second.Images["app"].Id.ShouldBe(first.Images["app"].Id);

        var status = await plan.RunAsync(["status", plan.PlanPath]);
        status.ExitCode.ShouldBe(0, status.StdErr);
        status.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).ShouldAllBe(l => l.Contains("up to date"));

        plan.Touch("lib-b");
        var stale = await plan.RunAsync(["status", plan.PlanPath]);
        foreach (var name in PlanWorkspace.WithDescendants("lib-b"))
            stale.StdOut.Split('\n').Single(l => l.StartsWith(name + " ", StringComparison.Ordinal)).ShouldNotContain("up to date");
        stale.StdOut.Split('\n').Single(l => l.StartsWith("lib-b ", StringComparison.Ordinal)).ShouldContain("inputs changed");
        stale.StdOut.Split('\n').Single(l => l.StartsWith("web ", StringComparison.Ordinal)).ShouldContain("parent");
        stale.StdOut.Split('\n').Single(l => l.StartsWith("lib-a ", StringComparison.Ordinal)).ShouldContain("up to date");

        var third = await plan.PlanRunAsync(TwoEngines);
        third.ExitCode.ShouldBe(0, third.StdErr);
        third.InState("built").ShouldBe(PlanWorkspace.WithDescendants("lib-b"));
        third.InState("up to date").ShouldBe(["base", "lib-a", "solo"]);
        (await plan.CatAsync(plan.Tag("app"), "/from-b.txt")).ShouldBe("lib-b\nchanged");
    }

    [Fact]
    public async Task A_failing_image_stops_only_its_descendants()
    {
        await using var plan = new PlanWorkspace(_engines.Main);
        plan.WriteStandardPlan(failing: "lib-a");
        var run = await plan.PlanRunAsync("--jobs", "2");
        _output.WriteLine(run.StdOut + run.StdErr);
        run.ExitCode.ShouldBe(1);
        run.InState("failed").ShouldBe(["lib-a"]);
        run.Images["lib-a"].Message.ShouldNotBeNull().ShouldContain("exit code: 3", Case.Insensitive);
        run.InState("not started").ShouldBe(["app", "web"]);
        run.Images["app"].Message.ShouldBe("lib-a failed");
        run.InState("built").ShouldBe(["base", "cli", "lib-b", "solo", "tool"]);
    }

    [Fact]
    public async Task Parents_reach_children_through_a_registry_by_digest_and_registry_outputs_are_pushed()
    {
        await using var registry = await RegistryServer.StartAsync();
        await using var plan = new PlanWorkspace(_engines.Main);
        var repo = $"{registry.Host}/{plan.Prefix}";
        // The plan's registry: hand-offs go through it, and web is also pushed there (output: both).
        plan.WriteStandardPlan(registry: repo, pushed: "web");
        var run = await plan.PlanRunAsync(TwoEngines);
        _output.WriteLine(run.StdOut + run.StdErr);
        run.ExitCode.ShouldBe(0, run.StdErr);
        run.InState("built").Count.ShouldBe(PlanWorkspace.Names.Count);
        // Some child was built on the engine its parent was not on: it pulled the parent by digest.
        run.StdErr.ShouldContain($"pulled {repo}/");
        run.StdErr.ShouldContain($"web: pushed {repo}/web@sha256:");
        (await plan.CatAsync(plan.Tag("web"), "/from-b.txt")).ShouldBe("lib-b");
        var status = await plan.RunAsync(["status", plan.PlanPath]);
        status.StdOut.Split('\n').Single(l => l.StartsWith("web ", StringComparison.Ordinal)).ShouldContain("up to date");
    }

    [Fact]
    public async Task Ctrl_C_mid_run_leaves_no_build_container_and_no_tag()
    {
        await using var plan = new PlanWorkspace(_engines.Main);
        plan.WriteStandardPlan();
        // A slow root: the run is cut while it builds.
        File.WriteAllText(Path.Combine(plan.Root, "base", "Dockerfile"), "FROM busybox\nRUN sleep 30\nCOPY base.txt /\n");
        using var process = CliProcess.Start(["plan", "run", plan.PlanPath, "--progress", "plain", "--network", "none", "--builder", "classic", .. TwoEngines],
            new Dictionary<string, string> { ["DOCKER_HOST"] = _engines.Main.DockerHost, ["XDG_CACHE_HOME"] = plan.Cache }, plan.Root);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!process.StdOut.Contains("base: running", StringComparison.Ordinal) && DateTime.UtcNow < deadline) await Task.Delay(100);
        // Wait until the RUN's container exists in one of the engines, then interrupt.
        string running = "";
        while (running.Length == 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200);
            running = await BuildContainersAsync(process.Id);
        }
        running.ShouldNotBeEmpty(process.StdErr);
        (await process.SignalAsync("INT")).ShouldBeTrue();
        (await process.WaitAsync(TimeSpan.FromSeconds(60))).ShouldBeTrue();
        process.ExitCode.ShouldBe(130, process.StdErr);
        (await BuildContainersAsync(process.Id)).ShouldBeEmpty();
        process.StdOut.ShouldContain("(cancelled)");
    }

    [Fact]
    public async Task An_image_transfer_sends_only_the_layers_the_target_lacks()
    {
        var tag = $"lt-plan-transfer/{Guid.NewGuid().ToString("N")[..8]}:1";
        var dir = Directory.CreateTempSubdirectory("lt-plan-transfer-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "Dockerfile"), "FROM busybox\nCOPY a.txt /\nCOPY b.txt /\n");
            File.WriteAllText(Path.Combine(dir, "a.txt"), "a");
            File.WriteAllText(Path.Combine(dir, "b.txt"), "b");
            await _engines.Main.DockerAsync(["build", "-q", "--label", EngineFixture.TestLabel + "=1", "-t", tag, dir]);
            var id = (await _engines.Main.DockerAsync(["image", "inspect", "--format", "{{.Id}}", tag])).Trim();
            var sent = await LayerTool.Docker.Plans.PlanImageTransfer.CopyAsync(_engines.Main.Connection, _engines.First.Connection, id, [tag], ["busybox:latest"], null,
                CancellationToken.None);
            sent.Full.ShouldBeFalse();
            sent.LayersSkipped.ShouldBe(1, "busybox's layer is in the target already");
            sent.LayersSent.ShouldBe(2);
            var there = await EngineFixture.RunAsync("docker", ["image", "inspect", "--format", "{{.Id}}", tag], dir, CancellationToken.None, null,
                new Dictionary<string, string> { ["DOCKER_HOST"] = _engines.First.Host });
            there.StdOut.Trim().ShouldBe(id);
            var again = await LayerTool.Docker.Plans.PlanImageTransfer.CopyAsync(_engines.Main.Connection, _engines.First.Connection, id, [tag], [], null, CancellationToken.None);
            again.LayersSent.ShouldBe(0, "the target has the image");
        }
        finally
        {
            await EngineFixture.RunAsync("docker", ["rmi", tag], dir, CancellationToken.None, null, new Dictionary<string, string> { ["DOCKER_HOST"] = _engines.First.Host });
            await EngineFixture.RunAsync("docker", ["rmi", tag], dir, CancellationToken.None, null, new Dictionary<string, string> { ["DOCKER_HOST"] = _engines.Main.DockerHost });
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Build containers of a process in the three engines.</summary>
    private async Task<string> BuildContainersAsync(int pid)
    {
        var found = "";
        foreach (var host in new[] { _engines.Main.DockerHost, _engines.First.Host, _engines.Second.Host })
        {
            var ps = await EngineFixture.RunAsync("docker", ["ps", "-a", "--format", "{{.Names}}", "--filter", $"name=^/layertool-(build|dind)-{pid.ToString(CultureInfo.InvariantCulture)}\\."],
                "/", CancellationToken.None, null, new Dictionary<string, string> { ["DOCKER_HOST"] = host });
            found += ps.StdOut.Trim();
        }
        return found;
    }
}
