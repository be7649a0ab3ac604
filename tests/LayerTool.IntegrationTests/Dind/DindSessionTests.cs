using LayerTool.Build;
using LayerTool.Docker;
using LayerTool.Docker.Dind;

namespace LayerTool.IntegrationTests.Dind;

/// <summary>The dind launcher: start, images in and out, and nothing left behind on any path.</summary>
[Collection(DindCollection.Name)]
public sealed class DindSessionTests(DindFixture dind)
{
    private static DindOptions Options(IReadOnlyList<string>? daemonArguments = null, TimeSpan? timeout = null) =>
        new(DindFixture.Image, new Dictionary<string, string> { [EngineFixture.TestLabel] = "1" }, timeout, DaemonArguments: daemonArguments);

    private sealed class Lines : IProgress<string>
    {
        public List<string> All { get; } = [];

        public void Report(string value)
        {
            lock (All) All.Add(value);
        }
    }

    [Fact]
    public async Task Images_built_inside_come_back_with_their_ids_and_nothing_is_left()
    {
        var tag = $"layertool-test-dind-out:{Guid.NewGuid():N}"[..44];
        var mid = tag + "-mid";
        var log = new Lines();
        string id, socketDirectory;
        string innerFinal, innerMid;
        await using (var session = await DindSession.StartAsync(dind.Connection, Options(), log, CancellationToken.None))
        {
            id = session.Id;
            socketDirectory = session.SocketDirectory;
            if (session.Isolation == DindIsolation.ExplicitCapabilities)
            {
                session.FallbackReason.ShouldNotBeNull().ShouldContain("caps");
                log.All.ShouldContain(l => l.Contains("refuses --privileged", StringComparison.Ordinal));
            }

            var provided = await session.ProvideImagesAsync(["busybox:latest", "no-such-image:anywhere"], CancellationToken.None);
            provided.Sent.ShouldBe(["busybox:latest"]);
            provided.MissingAtSource.ShouldBe(["no-such-image:anywhere"]);
            (await ImageTransfer.ImageIdAsync(session.Inner, "busybox:latest", CancellationToken.None))
                .ShouldBe(await ImageTransfer.ImageIdAsync(dind.Connection, "busybox:latest", CancellationToken.None));

            // A two-step build inside with an intermediate tag (what TAG does), through the inner socket.
            var inner = new Dictionary<string, string> { ["DOCKER_HOST"] = session.InnerEndpoint.ToString() };
            var context = Directory.CreateTempSubdirectory("dind-ctx-").FullName;
            try
            {
                await File.WriteAllTextAsync(Path.Combine(context, "Dockerfile"), "FROM busybox:latest\nRUN echo one > /one\nRUN echo two > /two\n");
                var build = await EngineFixture.RunAsync("docker", ["build", "-q", "--network", "host", "-t", tag, context], context, CancellationToken.None, environment: inner);
                build.ExitCode.ShouldBe(0, build.StdErr);
                var history = await EngineFixture.RunAsync("docker", ["history", "-q", tag], context, CancellationToken.None, environment: inner);
                var parent = history.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries)[1];
                (await EngineFixture.RunAsync("docker", ["tag", parent, mid], context, CancellationToken.None, environment: inner)).ExitCode.ShouldBe(0);
            }
            finally
            {
                Directory.Delete(context, recursive: true);
            }
            innerFinal = (await ImageTransfer.ImageIdAsync(session.Inner, tag, CancellationToken.None))!;
            innerMid = (await ImageTransfer.ImageIdAsync(session.Inner, mid, CancellationToken.None))!;

            var back = await session.BringBackAsync([tag, mid], CancellationToken.None);
            back.Sent.ShouldBe([tag, mid]);
        }

        try
        {
            (await ImageTransfer.ImageIdAsync(dind.Connection, tag, CancellationToken.None)).ShouldBe(innerFinal);
            (await ImageTransfer.ImageIdAsync(dind.Connection, mid, CancellationToken.None)).ShouldBe(innerMid);
            await AssertNothingLeftAsync(id, socketDirectory);
        }
        finally
        {
            await dind.DockerAsync(["rmi", tag, mid]);
        }
    }

    [Fact]
    public async Task A_failing_command_brings_nothing_back_and_leaves_nothing()
    {
        var log = new Lines();
        var result = await DindJobRunner.RunAsync(dind.Connection, Options(),
            new DindJob(["sh", "-c", "docker version >/dev/null && exit 3"], ["busybox:latest"], ["never-built:1"]), log, CancellationToken.None);
        result.ExitCode.ShouldBe(3);
        result.BroughtBack.ShouldBeEmpty();
        (await ImageTransfer.ImageIdAsync(dind.Connection, "never-built:1", CancellationToken.None)).ShouldBeNull();
        await AssertNoDindLeftAsync();
    }

    [Fact]
    public async Task Cancelling_mid_command_removes_the_container_and_its_volume()
    {
        using var cts = new CancellationTokenSource();
        var log = new Lines();
        var job = new DindJob(["sh", "-c", "docker version >/dev/null && sleep 120"], [], []);
        var run = DindJobRunner.RunAsync(dind.Connection, Options(), job, new CancelWhenReady(log, cts), cts.Token);
        await Should.ThrowAsync<OperationCanceledException>(() => run);
        await AssertNoDindLeftAsync();
    }

    [Fact]
    public async Task An_inner_daemon_that_cannot_start_is_reported_with_its_log_and_cleaned_up()
    {
        var e = await Should.ThrowAsync<EngineException>(() =>
            DindSession.StartAsync(dind.Connection, Options(["--no-such-flag"], TimeSpan.FromSeconds(20)), null, CancellationToken.None));
        e.Message.ShouldContain("before its daemon answered");
        e.Message.ShouldContain("unknown flag: --no-such-flag");
        await AssertNoDindLeftAsync();
    }

    [Fact]
    public async Task A_missing_dind_image_says_how_to_build_it()
    {
        var e = await Should.ThrowAsync<EngineException>(() =>
            DindSession.StartAsync(dind.Connection, new DindOptions("layertool-test-no-such-dind:1"), null, CancellationToken.None));
        e.Message.ShouldContain("layertool dind build-image");
        await AssertNoDindLeftAsync();
    }

    /// <summary>Cancels the token as soon as the session reports that its daemon is ready.</summary>
    private sealed class CancelWhenReady(Lines inner, CancellationTokenSource cts) : IProgress<string>
    {
        public void Report(string value)
        {
            inner.Report(value);
            if (value.Contains("ready in", StringComparison.Ordinal)) cts.CancelAfter(TimeSpan.FromSeconds(1));
        }
    }

    private async Task AssertNothingLeftAsync(string id, string socketDirectory)
    {
        var containers = await dind.DockerAsync(["ps", "-aq", "--filter", $"label={DindSession.Label}={id}"]);
        containers.StdOut.Trim().ShouldBeEmpty();
        var volumes = await dind.DockerAsync(["volume", "ls", "-q", "--filter", $"label={DindSession.Label}={id}"]);
        volumes.StdOut.Trim().ShouldBeEmpty();
        Directory.Exists(socketDirectory).ShouldBeFalse();
    }

    /// <summary>No dind container or volume of the tests at all. The dind tests run one at a time (one
    /// collection), so any leftover is a leak of the test that just ran.</summary>
    private async Task AssertNoDindLeftAsync()
    {
        var containers = await dind.DockerAsync(["ps", "-aq", "--filter", $"label={DindSession.Label}", "--filter", $"label={EngineFixture.TestLabel}=1"]);
        containers.StdOut.Trim().ShouldBeEmpty();
        var volumes = await dind.DockerAsync(["volume", "ls", "-q", "--filter", $"label={DindSession.Label}", "--filter", $"label={EngineFixture.TestLabel}=1"]);
        volumes.StdOut.Trim().ShouldBeEmpty();
    }
}
