using LayerTool.IntegrationTests.Build;

namespace LayerTool.IntegrationTests.BuildKit;

/// <summary>
/// <c>layertool build --builder buildkit</c> as a process on the real engine: a failing RUN, Ctrl-C in the middle
/// of a RUN, an unknown base and a <c># syntax=</c> file each end with one clear <c>layertool:</c> line, the right
/// exit code, and nothing tagged or left running.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class BuildKitFailureTests(EngineFixture engine) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lt-bk-fail-").FullName;
    private readonly string _cache = Directory.CreateTempSubdirectory("lt-bk-cache-").FullName;
    private readonly string _tag = $"layertool-bk-failure:{Guid.NewGuid():N}";
    private LayerToolProcess? _process;

    public void Dispose()
    {
        _process?.Dispose();
        EngineFixture.RunAsync("docker", ["rmi", _tag], _dir, CancellationToken.None, null, new Dictionary<string, string> { ["DOCKER_HOST"] = engine.DockerHost })
            .GetAwaiter().GetResult();
        Directory.Delete(_dir, true);
        Directory.Delete(_cache, true);
    }

    private async Task<(int Code, string StdOut, string StdErr)> BuildAsync(string dockerfile, params string[] extra)
    {
        await File.WriteAllTextAsync(Path.Combine(_dir, "Dockerfile"), dockerfile);
        _process = LayerToolProcess.Start(["build", "--builder", "buildkit", "--progress", "plain", "--network", "none", "-t", _tag, .. extra, _dir], engine.DockerHost, _cache, _dir);
        var code = await _process.WaitForExitAsync(TimeSpan.FromMinutes(2));
        return (code, _process.StdOut, _process.StdErr);
    }

    private async Task<bool> TaggedAsync() =>
        (await engine.DockerAsync(["images", "-q", _tag])).Trim().Length > 0;

    private static string OneErrorLine(string stderr)
    {
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines.Length.ShouldBe(1, stderr);
        lines[0].ShouldStartWith("layertool: ");
        stderr.ShouldNotContain("   at ");
        return lines[0];
    }

    [Fact]
    public async Task A_failing_RUN_names_the_step_and_the_exit_code()
    {
        var (code, stdout, stderr) = await BuildAsync("FROM busybox:latest\nRUN echo before\nRUN exit 3\n", "--no-cache");
        code.ShouldBe(1, stderr);
        OneErrorLine(stderr).ShouldBe("layertool: [3/3] RUN exit 3: process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3");
        stdout.ShouldContain("ERROR: executor failed running [/bin/sh -c exit 3]: exit code: 3");
        (await TaggedAsync()).ShouldBeFalse();
    }

    [Fact]
    public async Task Under_no_cache_a_TAG_whose_steps_ran_before_a_failure_is_tagged_and_one_after_it_is_not()
    {
        // Under --no-cache a TAG replays the cache of the build that runs its steps; when that build fails, the TAG
        // whose steps ran is still tagged (as when it runs first), from the cache, and nothing runs twice.
        var ran = $"layertool-bk-failure-ran:{Guid.NewGuid():N}";
        var never = $"layertool-bk-failure-never:{Guid.NewGuid():N}";
        try
        {
            var (code, stdout, stderr) = await BuildAsync(
                $"FROM busybox:latest\nRUN head -c 16 /dev/urandom | od -An -tx1 > /a && echo ran >> /log\nTAG {ran}\nRUN exit 3\nTAG {never}\nRUN true\n", "--no-cache");
            code.ShouldBe(1, stderr);
            OneErrorLine(stderr).ShouldContain("RUN exit 3");
            (await engine.DockerAsync(["images", "-q", ran])).Trim().ShouldNotBeEmpty(stdout);
            (await engine.DockerAsync(["images", "-q", never])).Trim().ShouldBeEmpty(stdout);
            (await TaggedAsync()).ShouldBeFalse();
            stdout.ShouldContain($"as {ran} (its steps ran before the failure)");
            // The TAG'd image is the failed build's first steps, which ran once.
            (await engine.DockerAsync(["run", "--rm", "--network", "none", ran, "cat", "/log"])).Trim().ShouldBe("ran");
            // The failing step failed once: the TAG after it was stopped before it ran again.
            stdout.Split('\n').Count(l => l.Contains("ERROR: executor failed running [/bin/sh -c exit 3]", StringComparison.Ordinal)).ShouldBe(1, stdout);
        }
        finally
        {
            foreach (var t in new[] { ran, never })
                await EngineFixture.RunAsync("docker", ["rmi", t], _dir, CancellationToken.None, null, new Dictionary<string, string> { ["DOCKER_HOST"] = engine.DockerHost });
        }
    }

    [Fact]
    public async Task An_unknown_base_is_a_clear_error()
    {
        var (code, _, stderr) = await BuildAsync("FROM layertool-no-such-image:never\nRUN true\n");
        code.ShouldBe(1, stderr);
        OneErrorLine(stderr).ShouldContain("layertool-no-such-image:never");
        (await TaggedAsync()).ShouldBeFalse();
    }

    [Fact]
    public async Task A_syntax_directive_is_refused_before_anything_runs()
    {
        var (code, stdout, stderr) = await BuildAsync("# syntax=docker/dockerfile:1.4\nFROM busybox:latest\nRUN true\n");
        code.ShouldBe(1, stderr);
        OneErrorLine(stderr).ShouldContain("line 1: # syntax=docker/dockerfile:1.4");
        stdout.ShouldBeEmpty();
    }

    [Fact]
    public async Task A_syntax_directive_goes_to_the_classic_builder_under_auto()
    {
        await File.WriteAllTextAsync(Path.Combine(_dir, "Dockerfile"), "# syntax=docker/dockerfile:1.4\nFROM busybox:latest\nENV A=1\n");
        _process = LayerToolProcess.Start(["build", "--builder", "auto", "--network", "none", "-t", _tag, _dir], engine.DockerHost, _cache, _dir);
        var code = await _process.WaitForExitAsync(TimeSpan.FromMinutes(2));
        code.ShouldBe(0, _process.StdErr);
        _process.StdErr.ShouldContain("layertool: building with the classic builder: the engine's BuildKit (Docker ");
        _process.StdOut.ShouldContain("Step 1/2 : FROM busybox:latest");
    }

    [Fact]
    public async Task Ctrl_C_in_the_middle_of_a_RUN_stops_the_solve_and_tags_nothing()
    {
        var marker = Random.Shared.Next(100_000, 999_999);
        await File.WriteAllTextAsync(Path.Combine(_dir, "Dockerfile"), $"FROM busybox:latest\nRUN echo started && sleep {marker}\n");
        _process = LayerToolProcess.Start(["build", "--builder", "buildkit", "--progress", "plain", "--no-cache", "--network", "none", "-t", _tag, _dir], engine.DockerHost, _cache, _dir);
        var deadline = DateTime.UtcNow.AddMinutes(1);
        while (!_process.StdOut.Contains(" started\n", StringComparison.Ordinal))
        {
            if (DateTime.UtcNow > deadline || await _process.HasExitedWithinAsync(TimeSpan.Zero)) throw new ShouldAssertException($"no RUN output:\n{_process.StdOut}\n{_process.StdErr}");
            await Task.Delay(50);
        }
        (await SleepingAsync(marker)).ShouldBeTrue("the RUN's process should be running");
        await _process.SignalAsync("INT");
        var code = await _process.WaitForExitAsync(TimeSpan.FromSeconds(30));
        code.ShouldBe(130, _process.StdErr);
        OneErrorLine(_process.StdErr).ShouldBe("layertool: cancelled");
        var gone = DateTime.UtcNow.AddSeconds(15);
        while (await SleepingAsync(marker) && DateTime.UtcNow < gone) await Task.Delay(200);
        (await SleepingAsync(marker)).ShouldBeFalse("the engine should have stopped the RUN");
        (await TaggedAsync()).ShouldBeFalse();
    }

    /// <summary>Whether the RUN's <c>sleep MARKER</c> runs on this machine (BuildKit runs RUN with runc, not as a docker container).</summary>
    private static async Task<bool> SleepingAsync(int marker)
    {
        var ps = await EngineFixture.RunAsync("ps", ["-eo", "args"], AppContext.BaseDirectory, CancellationToken.None);
        return ps.StdOut.Split('\n').Any(l => l.Trim() == $"sleep {marker}");
    }
}
