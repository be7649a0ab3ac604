using LayerTool.Build.Execution;
using Xunit.Abstractions;

namespace LayerTool.IntegrationTests.Build;

/// <summary>
/// A real <c>layertool build</c> process against the real engine, through <see cref="EngineProxy"/>: the engine
/// going away mid-build, SIGINT and SIGTERM in the middle of a RUN, a base image that cannot be pulled. Each
/// must end promptly with a one-line message and the documented exit code, tag nothing and leave no container.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class ReliabilityTests : IDisposable
{
    /// <summary>Waiting for output: generous, the machine may be loaded (dotnet start-up, a container start).</summary>
    private static readonly TimeSpan OutputTimeout = TimeSpan.FromSeconds(120);

    /// <summary>Longer than this after the event means the process hung: the RUN it interrupts sleeps far longer.</summary>
    private static readonly TimeSpan ExitTimeout = TimeSpan.FromSeconds(90);

    private readonly EngineFixture _engine;
    private readonly ITestOutputHelper _output;
    private readonly string _dir = Directory.CreateTempSubdirectory("lt-reliab-").FullName;
    private readonly string _cacheHome = Directory.CreateTempSubdirectory("lt-reliab-cache-").FullName;
    private readonly EngineProxy _proxy;
    private readonly string _tag = $"layertool-it/reliability:{Guid.NewGuid().ToString("N")[..8]}";

    private LayerToolProcess? _build;

    public ReliabilityTests(EngineFixture engine, ITestOutputHelper output)
    {
        _engine = engine;
        _output = output;
        _proxy = new EngineProxy(new Uri(engine.DockerHost).LocalPath);
    }

    public void Dispose()
    {
        if (_build is not null)
        {
            _output.WriteLine($"stdout:\n{_build.StdOut}\nstderr:\n{_build.StdErr}");
            _build.Dispose();
        }
        _proxy.Dispose();
        // Whatever a failed assertion left: the containers the process created, and the tag.
        foreach (var name in _proxy.CreatedContainers)
            EngineFixture.RunAsync("docker", ["rm", "-f", name], _dir, CancellationToken.None, null, DockerEnv).GetAwaiter().GetResult();
        EngineFixture.RunAsync("docker", ["rmi", _tag], _dir, CancellationToken.None, null, DockerEnv).GetAwaiter().GetResult();
        Directory.Delete(_dir, true);
        Directory.Delete(_cacheHome, true);
    }

    private Dictionary<string, string> DockerEnv => new() { ["DOCKER_HOST"] = _engine.DockerHost };

    private LayerToolProcess StartBuild(string dockerfile)
    {
        File.WriteAllText(Path.Combine(_dir, "Dockerfile"), dockerfile);
        _build = LayerToolProcess.Start(["build", "--builder", "classic", "--network", "none", "--no-cache", "-t", _tag, _dir], _proxy.DockerHost, _cacheHome, _dir);
        return _build;
    }

    /// <summary>The one line on stderr, checked to be a <c>layertool: </c> message without a stack trace.</summary>
    private static string SingleErrorLine(LayerToolProcess process)
    {
        var lines = process.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines.Length.ShouldBe(1, $"stderr:\n{process.StdErr}");
        lines[0].ShouldStartWith("layertool: ");
        process.StdErr.ShouldNotContain("   at ");
        return lines[0];
    }

    /// <summary>Build containers of this build still in the engine (asked the real engine, not the proxy).</summary>
    private async Task<string> LeftContainersAsync()
    {
        var names = _proxy.CreatedContainers;
        names.ShouldAllBe(n => n.StartsWith(BuildExecutor.ContainerNamePrefix, StringComparison.Ordinal));
        var left = new List<string>();
        foreach (var name in names)
        {
            var found = await _engine.DockerAsync(["ps", "-aq", "--filter", $"name=^{name}$"]);
            if (found.Trim().Length > 0) left.Add(name);
        }
        return string.Join(' ', left);
    }

    private async Task ShouldNotBeTaggedAsync()
    {
        var inspect = await EngineFixture.RunAsync("docker", ["image", "inspect", _tag], _dir, CancellationToken.None, null, DockerEnv);
        inspect.ExitCode.ShouldNotBe(0, $"{_tag} exists");
    }

    [Fact]
    public async Task Reliability_engine_lost_in_the_middle_of_a_run_fails_with_a_clear_message()
    {
        var build = StartBuild("FROM busybox\nRUN echo started && sleep 300\n");
        await build.WaitForLineAsync("started", OutputTimeout);
        _proxy.Cut();

        var exit = await build.WaitForExitAsync(ExitTimeout);
        exit.ShouldBe(1, $"stdout:\n{build.StdOut}\nstderr:\n{build.StdErr}");
        var message = SingleErrorLine(build);
        message.ShouldStartWith("layertool: Dockerfile:2: lost the Docker engine while trying to wait for a build container: ");
        message.ShouldNotContain("inner exception");
        message.ShouldNotContain("copying content");
        message.ShouldNotContain("chunk");
        await ShouldNotBeTaggedAsync();

        // Through the real engine: the process could not remove its container (the engine was gone for it);
        // it said which one, and the name finds it.
        var container = _proxy.CreatedContainers.ShouldHaveSingleItem();
        (await LeftContainersAsync()).ShouldBe(container);
        build.StdOut.ShouldContain($"[Warning] could not remove the build container {container}; remove with: docker rm -f {container}");
        await _engine.DockerAsync(["rm", "-f", container]);
        (await LeftContainersAsync()).ShouldBeEmpty();
    }

    [Fact]
    public async Task Reliability_engine_lost_between_steps_fails_with_a_clear_message()
    {
        var build = StartBuild("FROM busybox\nRUN echo first > /first\nRUN echo second && sleep 300\n");
        await build.WaitForLineAsync("Step 3/3 : RUN echo second && sleep 300", OutputTimeout);
        _proxy.Cut();

        var exit = await build.WaitForExitAsync(ExitTimeout);
        exit.ShouldBe(1, $"stdout:\n{build.StdOut}\nstderr:\n{build.StdErr}");
        var message = SingleErrorLine(build);
        message.ShouldMatch(@"^layertool: Dockerfile:[23]: lost the Docker engine while trying to [a-z ]+: \w");
        message.ShouldNotContain("inner exception");
        await ShouldNotBeTaggedAsync();
        foreach (var name in _proxy.CreatedContainers) await _engine.DockerAsync(["rm", "-f", name]);
        (await LeftContainersAsync()).ShouldBeEmpty();
    }

    [Theory]
    [InlineData("INT", 130)]
    [InlineData("TERM", 143)]
    public async Task Reliability_a_signal_in_the_middle_of_a_run_removes_the_container_and_tags_nothing(string signal, int expectedExit)
    {
        var build = StartBuild("FROM busybox\nRUN echo started && sleep 300\n");
        await build.WaitForLineAsync("started", OutputTimeout);
        _proxy.CreatedContainers.ShouldHaveSingleItem();
        await build.SignalAsync(signal);

        var exit = await build.WaitForExitAsync(ExitTimeout);
        exit.ShouldBe(expectedExit, $"stdout:\n{build.StdOut}\nstderr:\n{build.StdErr}");
        SingleErrorLine(build).ShouldBe("layertool: cancelled");
        await ShouldNotBeTaggedAsync();
        (await LeftContainersAsync()).ShouldBeEmpty("the build container is still there");
    }

    [Fact]
    public async Task Reliability_a_second_signal_while_the_engine_hangs_stops_without_waiting_for_the_clean_up()
    {
        var build = StartBuild("FROM busybox\nRUN echo started && sleep 300\n");
        await build.WaitForLineAsync("started", OutputTimeout);
        var container = _proxy.CreatedContainers.ShouldHaveSingleItem();
        _proxy.Freeze();
        // The first cancels; the clean-up then waits on an engine that does not answer; the second stops it.
        await build.SignalAsync("INT");
        // Two signals sent close together may merge into one (standard signals are not queued): repeat the
        // second until the process is gone.
        var deadline = DateTime.UtcNow + ExitTimeout;
        while (!await build.HasExitedWithinAsync(TimeSpan.FromSeconds(1)) && DateTime.UtcNow < deadline) await build.TrySignalAsync("INT");

        var exit = await build.WaitForExitAsync(ExitTimeout);
        exit.ShouldBe(130, $"stdout:\n{build.StdOut}\nstderr:\n{build.StdErr}");
        SingleErrorLine(build).ShouldBe("layertool: cancelled again: stopped before the clean-up finished");
        await ShouldNotBeTaggedAsync();
        // The engine never heard of the clean-up: the container is still there, by its name.
        (await LeftContainersAsync()).ShouldBe(container);
        await _engine.DockerAsync(["rm", "-f", container]);
        (await LeftContainersAsync()).ShouldBeEmpty();
    }

    [Fact]
    public async Task Reliability_a_base_image_that_cannot_be_pulled_names_the_from_line_and_creates_no_container()
    {
        // Port 9 (discard) on loopback: the pull fails at once, as it does for any unreachable registry.
        var build = StartBuild("FROM 127.0.0.1:9/layertool/missing:1\nRUN true\n");

        var exit = await build.WaitForExitAsync(ExitTimeout);
        exit.ShouldBe(1, $"stdout:\n{build.StdOut}\nstderr:\n{build.StdErr}");
        SingleErrorLine(build).ShouldStartWith("layertool: Dockerfile:1: cannot get base image 127.0.0.1:9/layertool/missing:1: the engine refused to pull 127.0.0.1:9/layertool/missing:1: Get \"http://127.0.0.1:9/v2/\"");
        _proxy.Connections.ShouldBeGreaterThan(0);
        _proxy.CreatedContainers.ShouldBeEmpty();
        await ShouldNotBeTaggedAsync();
    }
}
