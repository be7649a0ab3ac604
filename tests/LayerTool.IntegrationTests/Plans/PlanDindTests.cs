using LayerTool.Docker.Sweep;
using LayerTool.IntegrationTests.Dind;
using Xunit.Abstractions;

namespace LayerTool.IntegrationTests.Plans;

/// <summary><c>plan run --dind 3</c>: the 8-image plan on three throw-away dind engines, released at the end.</summary>
[Collection(DindCollection.Name)]
public sealed class PlanDindTests(DindFixture dind, ITestOutputHelper output)
{
    [Fact]
    public async Task Three_dind_engines_build_the_plan_and_are_released()
    {
        await using var plan = new PlanWorkspace(dind.Engine);
        plan.WriteStandardPlan();
        var run = await plan.PlanRunAsync("--dind", "3", "--dind-image", DindFixture.Image);
        output.WriteLine(run.StdOut + run.StdErr);
        run.ExitCode.ShouldBe(0, run.StdErr);
        run.InState("built").Count.ShouldBe(PlanWorkspace.Names.Count);
        run.Images.Values.Select(l => l.Engine).Distinct().Count().ShouldBeGreaterThan(1, "the builds were spread over the dind engines");
        run.Images.Values.ShouldAllBe(l => l.Engine!.StartsWith("dind-", StringComparison.Ordinal));
        (await plan.CatAsync(plan.Tag("web"), "/from-b.txt")).ShouldBe("lib-b");
        // Every dind container of this process, and its volume, is gone.
        var owner = Sweeper.DindPrefix + ProcessOwner.Current!.Token + ".";
        (await dind.DockerAsync(["ps", "-a", "--format", "{{.Names}}", "--filter", $"name=^/{owner}"])).StdOut.Trim().ShouldBeEmpty();
        (await dind.DockerAsync(["volume", "ls", "--format", "{{.Name}}", "--filter", $"name={owner}"])).StdOut.Trim().ShouldBeEmpty();

        var again = await plan.PlanRunAsync("--dind", "3", "--dind-image", DindFixture.Image);
        again.ExitCode.ShouldBe(0, again.StdErr);
        again.InState("up to date").Count.ShouldBe(PlanWorkspace.Names.Count);
        again.StdErr.ShouldNotContain("starting a dind engine", Case.Sensitive, "nothing to build: no dind engine is started");
    }

    [Fact]
    public async Task Ctrl_C_while_dind_engines_build_releases_every_dind_container()
    {
        await using var plan = new PlanWorkspace(dind.Engine);
        plan.WriteStandardPlan();
        File.WriteAllText(Path.Combine(plan.Root, "base", "Dockerfile"), "FROM busybox\nRUN sleep 60\nCOPY base.txt /\n");
        File.WriteAllText(Path.Combine(plan.Root, "solo", "Dockerfile"), "FROM busybox\nRUN sleep 60\nCOPY solo.txt /\n");
        using var process = Reliability.CliProcess.Start(
            ["plan", "run", plan.PlanPath, "--progress", "plain", "--network", "none", "--dind", "2", "--dind-image", DindFixture.Image],
            new Dictionary<string, string> { ["DOCKER_HOST"] = dind.Engine.DockerHost, ["XDG_CACHE_HOME"] = plan.Cache }, plan.Root);
        var owner = Sweeper.DindPrefix + process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) + ".";
        async Task<string> DindContainers() => (await dind.DockerAsync(["ps", "-a", "--format", "{{.Names}}", "--filter", $"name=^/{owner}"])).StdOut.Trim();
        var deadline = DateTime.UtcNow.AddSeconds(120);
        // Both builds run (each on its own dind engine) before the signal.
        while (process.StdOut.Split('\n').Count(l => l.EndsWith(": running on dind-1", StringComparison.Ordinal) || l.EndsWith(": running on dind-2", StringComparison.Ordinal)) < 2
               && DateTime.UtcNow < deadline && !process.HasExited)
            await Task.Delay(200);
        await Task.Delay(TimeSpan.FromSeconds(5));
        (await DindContainers()).ShouldNotBeEmpty(process.StdErr);
        (await process.SignalAsync("INT")).ShouldBeTrue();
        (await process.WaitAsync(TimeSpan.FromSeconds(90))).ShouldBeTrue();
        output.WriteLine(process.StdOut + process.StdErr);
        process.ExitCode.ShouldBe(130, process.StdErr);
        (await DindContainers()).ShouldBeEmpty();
        (await dind.DockerAsync(["volume", "ls", "--format", "{{.Name}}", "--filter", $"name={owner}"])).StdOut.Trim().ShouldBeEmpty();
    }

    [Fact]
    public async Task A_killed_run_leaves_its_dind_container_to_the_next_run_s_sweep()
    {
        await using var plan = new PlanWorkspace(dind.Engine);
        plan.WriteStandardPlan();
        File.WriteAllText(Path.Combine(plan.Root, "base", "Dockerfile"), "FROM busybox\nRUN sleep 60\nCOPY base.txt /\n");
        using var process = Reliability.CliProcess.Start(
            ["plan", "run", plan.PlanPath, "--progress", "plain", "--network", "none", "--dind", "1", "--dind-image", DindFixture.Image],
            new Dictionary<string, string> { ["DOCKER_HOST"] = dind.Engine.DockerHost, ["XDG_CACHE_HOME"] = plan.Cache }, plan.Root);
        var owner = Sweeper.DindPrefix + process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) + ".";
        async Task<string> Running() => (await dind.DockerAsync(["ps", "--format", "{{.Names}}", "--filter", $"name=^/{owner}"])).StdOut.Trim();
        async Task<string> Any() => (await dind.DockerAsync(["ps", "-a", "--format", "{{.Names}}", "--filter", $"name=^/{owner}"])).StdOut.Trim();
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while ((await Running()).Length == 0 && DateTime.UtcNow < deadline && !process.HasExited) await Task.Delay(250);
        (await Running()).ShouldNotBeEmpty(process.StdErr);
        (await process.SignalAsync("KILL")).ShouldBeTrue();
        (await process.WaitAsync(TimeSpan.FromSeconds(30))).ShouldBeTrue();
        (await Any()).ShouldNotBeEmpty("SIGKILL leaves the dind container running");

        // Any later run sweeps it at start: here a plan status.
        var status = await plan.RunAsync(["status", plan.PlanPath]);
        status.ExitCode.ShouldBe(0, status.StdErr);
        (await Any()).ShouldBeEmpty();
        (await dind.DockerAsync(["volume", "ls", "--format", "{{.Name}}", "--filter", $"name={owner}"])).StdOut.Trim().ShouldBeEmpty();
        Directory.EnumerateDirectories(Path.GetTempPath(), owner + "*").ShouldBeEmpty("the dind engine's socket directory");
    }
}
