using System.Diagnostics;

namespace LayerTool.IntegrationTests.Dind;

/// <summary>wrapdocker.sh, the dind image's entrypoint, run as a container of the outer engine.</summary>
[Collection(DindCollection.Name)]
public sealed class WrapdockerTests(DindFixture dind) : IAsyncLifetime
{
    private readonly string _volume = $"layertool-test-wrapdocker-{Guid.NewGuid():N}"[..40];
    private readonly List<string> _containers = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var c in _containers) await dind.DockerAsync(["rm", "-f", "-v", c]);
        await dind.DockerAsync(["volume", "rm", "-f", _volume]);
    }

    private List<string> Run(params string[] rest) =>
        ["run", "--rm", .. dind.RunFlags, "-v", $"{_volume}:/var/lib/docker", .. rest];

    [Fact]
    public async Task Runs_the_command_against_the_inner_daemon_and_returns_its_status()
    {
        var result = await dind.DockerAsync(Run(DindFixture.Image, "sh", "-c", "docker info --format '{{.Driver}}' && exit 7"));
        result.ExitCode.ShouldBe(7, result.StdErr);
        result.StdOut.ShouldContain("overlay2");
        result.StdErr.ShouldContain("is ready");
        result.StdErr.ShouldContain("dockerd stopped cleanly");
    }

    [Fact]
    public async Task Nested_containers_run_and_stdin_reaches_the_command()
    {
        var archive = Path.GetTempFileName();
        try
        {
            (await dind.DockerAsync(["save", "-o", archive, "busybox:latest"])).ExitCode.ShouldBe(0);
            var psi = new ProcessStartInfo("sh") { RedirectStandardOutput = true, RedirectStandardError = true };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add($"docker {string.Join(' ', Run(["-i", DindFixture.Image, "sh", "-c", "docker load -q && docker run --rm --network none busybox echo nested-ok"]).Select(Quote))} < {Quote(archive)}");
            psi.Environment["DOCKER_HOST"] = dind.Engine.DockerHost;
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = await p.StandardError.ReadToEndAsync();
            await p.WaitForExitAsync();
            p.ExitCode.ShouldBe(0, stderr);
            (await stdout).ShouldContain("nested-ok");
        }
        finally
        {
            File.Delete(archive);
        }
    }

    [Fact]
    public async Task A_daemon_that_cannot_start_fails_within_the_timeout_and_shows_its_log()
    {
        var watch = Stopwatch.StartNew();
        var result = await dind.DockerAsync(Run("-e", "DIND_WAIT=20", DindFixture.Image, "--no-such-flag"));
        watch.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(20));
        result.ExitCode.ShouldNotBe(0);
        result.StdErr.ShouldContain("dockerd log");
        result.StdErr.ShouldContain("unknown flag: --no-such-flag");
        result.StdErr.ShouldContain("dockerd exited with status");
    }

    [Fact]
    public async Task A_daemon_that_does_not_answer_in_time_is_given_up_with_its_log()
    {
        // Deterministic: a zero-second budget, and no daemon answers before its first probe.
        var result = await dind.DockerAsync(Run("-e", "DIND_WAIT=0", DindFixture.Image, "true"));
        result.ExitCode.ShouldNotBe(0);
        result.StdErr.ShouldContain("did not answer within 0s");
        result.StdErr.ShouldContain("dockerd log");
    }

    [Fact]
    public async Task SIGTERM_stops_dockerd_cleanly_and_the_container_exits_0()
    {
        var name = $"layertool-test-sigterm-{Guid.NewGuid():N}"[..36];
        _containers.Add(name);
        var flags = Run("-d", "--name", name, DindFixture.Image).Where(a => a != "--rm").ToList();
        (await dind.DockerAsync(flags)).ExitCode.ShouldBe(0);
        await WaitForLogAsync(name, "is ready");

        var watch = Stopwatch.StartNew();
        var stop = await dind.DockerAsync(["stop", "-t", "30", name]);
        stop.ExitCode.ShouldBe(0, stop.StdErr);
        watch.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(25)); // stopped by the signal, not killed at the timeout
        (await dind.DockerAsync(["inspect", "--format", "{{.State.ExitCode}}", name])).StdOut.Trim().ShouldBe("0");
        var logs = await dind.DockerAsync(["logs", name]);
        (logs.StdOut + logs.StdErr).ShouldContain("received SIGTERM");
        (logs.StdOut + logs.StdErr).ShouldContain("dockerd stopped cleanly");
    }

    [Fact]
    public async Task Storage_on_the_containers_own_overlay_is_refused_with_advice()
    {
        var result = await dind.DockerAsync(Run("-e", "DIND_DATA_ROOT=/var/lib/docker-on-overlay", DindFixture.Image, "true"));
        result.ExitCode.ShouldBe(1);
        result.StdErr.ShouldContain("overlay on overlay does not work");
        result.StdErr.ShouldContain("DIND_STORAGE_DRIVER=vfs");
    }

    [Fact]
    public async Task A_storage_driver_override_is_honoured()
    {
        var result = await dind.DockerAsync(Run("-e", "DIND_DATA_ROOT=/var/lib/docker-on-overlay", "-e", "DIND_STORAGE_DRIVER=vfs",
            DindFixture.Image, "docker", "info", "--format", "{{.Driver}}"));
        result.ExitCode.ShouldBe(0, result.StdErr);
        result.StdOut.Trim().ShouldBe("vfs");
    }

    [Fact]
    public async Task TCP_without_TLS_is_refused()
    {
        var result = await dind.DockerAsync(Run("-e", "DIND_HOSTS=unix:///var/run/docker.sock tcp://127.0.0.1:2375", DindFixture.Image, "true"));
        result.ExitCode.ShouldBe(1);
        result.StdErr.ShouldContain("without TLS");
    }

    [Fact]
    public async Task Stale_pid_files_do_not_stop_the_daemon()
    {
        var result = await dind.DockerAsync(Run("--entrypoint", "sh", DindFixture.Image, "-c",
            "echo 999999 > /var/run/docker.pid && mkdir -p /var/run/docker/containerd && echo 999999 > /var/run/docker/containerd/containerd.pid && exec /usr/local/bin/wrapdocker.sh docker version --format ok-{{.Server.Version}}"));
        result.ExitCode.ShouldBe(0, result.StdErr);
        result.StdOut.ShouldContain("ok-20.10");
    }

    [Fact]
    public async Task On_cgroup_v1_nested_containers_live_under_the_dind_containers_own_cgroup()
    {
        var info = await dind.DockerAsync(["info", "--format", "{{.CgroupVersion}}"]);
        if (info.StdOut.Trim() != "1") return; // cgroup v2 hosts use a private namespace instead
        var archive = Path.GetTempFileName();
        try
        {
            (await dind.DockerAsync(["save", "-o", archive, "busybox:latest"])).ExitCode.ShouldBe(0);
            var psi = new ProcessStartInfo("sh") { RedirectStandardOutput = true, RedirectStandardError = true };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add($"docker {string.Join(' ', Run(["-i", DindFixture.Image, "sh", "-c", "docker load -q >/dev/null && grep :memory: /proc/self/cgroup && docker run --rm --network none busybox grep :memory: /proc/self/cgroup"]).Select(Quote))} < {Quote(archive)}");
            psi.Environment["DOCKER_HOST"] = dind.Engine.DockerHost;
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = await p.StandardError.ReadToEndAsync();
            await p.WaitForExitAsync();
            p.ExitCode.ShouldBe(0, stderr);
            var lines = (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            lines.Length.ShouldBe(2);
            var own = lines[0].Split(':')[2];
            lines[1].Split(':')[2].ShouldStartWith(own + "/dind/");
        }
        finally
        {
            File.Delete(archive);
        }
    }

    private async Task WaitForLogAsync(string container, string text)
    {
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < TimeSpan.FromSeconds(60))
        {
            var logs = await dind.DockerAsync(["logs", container]);
            if ((logs.StdOut + logs.StdErr).Contains(text, StringComparison.Ordinal)) return;
            await Task.Delay(250);
        }
        throw new TimeoutException($"{container} never logged '{text}'");
    }

    private static string Quote(string s) => "'" + s.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
