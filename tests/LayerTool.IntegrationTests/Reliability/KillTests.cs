using System.Diagnostics;
using System.Globalization;
using LayerTool.Docker.Sweep;
using Xunit.Abstractions;

namespace LayerTool.IntegrationTests.Reliability;

/// <summary>
/// A test image big enough that a squash of it takes a second or two (about 56 MB of random data in two layers
/// over busybox: long enough to land twenty signals at distinct points, short enough for CI), built once for
/// <see cref="KillTests"/> and removed at the end.
/// </summary>
public sealed class KillImageFixture : IAsyncLifetime
{
    public string Image { get; } = $"layertool-it/kill-big:{Guid.NewGuid().ToString("N")[..8]}";

    public async Task InitializeAsync()
    {
        // The collection's EngineFixture has set DOCKER_HOST for this process.
        var dockerfile = """
            FROM busybox
            RUN mkdir /data && for i in 1 2 3 4 5; do head -c 8000000 /dev/urandom > /data/f$i; done
            RUN for i in 1 2; do head -c 8000000 /dev/urandom > /data/g$i; done && rm /data/f1 && mkdir -p /etc/x && echo y > /etc/x/y
            """;
        var build = await EngineFixture.RunAsync("docker", ["build", "-q", "--network", "none", "--label", $"{EngineFixture.TestLabel}=1", "-t", Image, "-"],
            EngineFixture.RepoRoot, CancellationToken.None, dockerfile);
        if (build.ExitCode != 0) throw new InvalidOperationException($"cannot build {Image}:\n{build.StdErr}");
    }

    public async Task DisposeAsync() =>
        await EngineFixture.RunAsync("docker", ["rmi", "-f", Image], EngineFixture.RepoRoot, CancellationToken.None);
}

/// <summary>
/// Leaks after signals and kills (issue 14, item 4), with the real <c>layertool</c> binary on the real engine:
/// SIGINT and SIGTERM at points spread over a whole squash (the API path with its export container, and the fast
/// path writing <c>--output</c>) must end the process within seconds with a non-zero code, and leave no
/// container, no temp file and no tag. After SIGKILL, which no process can clean up after, the next run must
/// sweep what the killed one left: its export or build containers and its temp directory.
/// Each child gets a TMPDIR of the test's own, so every temp file it makes is seen. The number of kills per
/// phase is <c>LAYERTOOL_KILL_LOOP</c> (default 20, what issue 14 asks for); with <c>LAYERTOOL_KILL_REPORT</c> set to a
/// file, each phase appends its figures there (docs/reliability.md has them).
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class KillTests : IClassFixture<KillImageFixture>, IDisposable
{
    /// <summary>How long after the signal the process may take to exit (its clean-up included). Generous for a
    /// machine shared with builds; the figures measured are far below (docs/reliability.md).</summary>
    private static readonly TimeSpan ExitBound = TimeSpan.FromSeconds(3);

    /// <summary>Longer than this means the process hung (the old backstop was 90 s).</summary>
    private static readonly TimeSpan HangTimeout = TimeSpan.FromSeconds(60);

    private readonly EngineFixture _engine;
    private readonly KillImageFixture _image;
    private readonly ITestOutputHelper _output;
    private readonly string _temp = Directory.CreateTempSubdirectory("lt-kill-tmp-").FullName;
    private readonly string _cache = Directory.CreateTempSubdirectory("lt-kill-cache-").FullName;
    private readonly string _work = Directory.CreateTempSubdirectory("lt-kill-work-").FullName;
    private readonly List<string> _tags = [];

    public KillTests(EngineFixture engine, KillImageFixture image, ITestOutputHelper output)
    {
        _engine = engine;
        _image = image;
        _output = output;
    }

    private static int Loop =>
        int.TryParse(Environment.GetEnvironmentVariable("LAYERTOOL_KILL_LOOP"), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : 20;

    /// <summary>A phase's figures: to the test output, and appended to <c>LAYERTOOL_KILL_REPORT</c> when set.</summary>
    private void Report(string line)
    {
        _output.WriteLine(line);
        if (Environment.GetEnvironmentVariable("LAYERTOOL_KILL_REPORT") is { Length: > 0 } file)
            File.AppendAllText(file, $"{DateTime.UtcNow:yyyy-MM-dd HH:mm:ss} UTC  {line}{Environment.NewLine}");
    }

    public void Dispose()
    {
        foreach (var tag in _tags)
            EngineFixture.RunAsync("docker", ["rmi", tag], _work, CancellationToken.None, null, DockerEnv).GetAwaiter().GetResult();
        foreach (var dir in (string[])[_temp, _cache, _work])
            Directory.Delete(dir, recursive: true);
    }

    private Dictionary<string, string> DockerEnv => new() { ["DOCKER_HOST"] = _engine.DockerHost };

    private Dictionary<string, string> ChildEnv => new()
    {
        ["DOCKER_HOST"] = _engine.DockerHost,
        ["XDG_CACHE_HOME"] = _cache,
        ["TMPDIR"] = _temp,
    };

    private string NewTag()
    {
        var tag = $"layertool-it/kill-out:{Guid.NewGuid().ToString("N")[..10]}";
        _tags.Add(tag);
        return tag;
    }

    /// <summary>The squash of one phase: through the engine API (export container, save, load), or the fast path
    /// writing an output file as well.</summary>
    private string[] SquashArgs(string variant, string tag) => variant switch
    {
        "api" => ["squash", _image.Image, "--onto", "busybox", "--no-fast-path", "-t", tag],
        "output" => ["squash", _image.Image, "--onto", "busybox", "--output", Path.Combine(_work, "out.tar"), "-t", tag],
        _ => throw new ArgumentOutOfRangeException(nameof(variant), variant, null),
    };

    private CliProcess Start(IEnumerable<string> args) => CliProcess.Start(args, ChildEnv, _work);

    /// <summary>Containers (any state) whose name says they belong to process <paramref name="pid"/>.</summary>
    private async Task<string> ContainersOfAsync(int pid) =>
        (await _engine.DockerAsync(["ps", "-a", "--format", "{{.Names}}", "--filter", $"name=^/layertool-(export|build)-{pid.ToString(CultureInfo.InvariantCulture)}\\."]))
        .Trim();

    /// <summary>Everything in the children's temp directory and partial outputs next to the output file. Not the .NET
    /// runtime's own diagnostics socket and debugger pipes, which it makes in TMPDIR before LayerTool runs and which a
    /// SIGKILL leaves as it does for any .NET process.</summary>
    private string TempLeftovers() =>
        string.Join(' ', Directory.EnumerateFileSystemEntries(_temp, "*", SearchOption.AllDirectories)
            .Where(p => !Path.GetFileName(p).StartsWith("dotnet-diagnostic-", StringComparison.Ordinal)
                        && !Path.GetFileName(p).StartsWith("clr-debug-pipe-", StringComparison.Ordinal))
            .Concat(Directory.EnumerateFiles(_work, ".*tmp-*")));

    private async Task<bool> TaggedAsync(string tag) =>
        (await EngineFixture.RunAsync("docker", ["image", "inspect", tag], _work, CancellationToken.None, null, DockerEnv)).ExitCode == 0;

    /// <summary>One squash to its end: it works here, and how long it takes (which spreads the signals); also warms
    /// the base index cache, as a user's second squash would find it.</summary>
    private async Task<TimeSpan> MeasureAsync(string variant)
    {
        var tag = NewTag();
        var clock = Stopwatch.StartNew();
        using var run = Start(SquashArgs(variant, tag));
        (await run.WaitAsync(TimeSpan.FromMinutes(5))).ShouldBeTrue("the squash did not finish within 5 minutes");
        var took = clock.Elapsed;
        run.ExitCode.ShouldBe(0, run.StdErr);
        (await TaggedAsync(tag)).ShouldBeTrue();
        (await ContainersOfAsync(run.Id)).ShouldBeEmpty();
        TempLeftovers().ShouldBeEmpty("a squash that succeeded left temp files");
        await _engine.DockerAsync(["rmi", tag]);
        File.Delete(Path.Combine(_work, "out.tar"));
        _output.WriteLine($"{variant}: a whole squash took {took.TotalSeconds:0.0} s");
        return took;
    }

    /// <summary>The delays of the kills of one phase: spread evenly over the run, from the process's start-up to its end.</summary>
    private static IEnumerable<TimeSpan> Delays(TimeSpan duration, int count) =>
        Enumerable.Range(0, count).Select(k => TimeSpan.FromSeconds(0.1 + (duration.TotalSeconds - 0.1) * (k + 0.5) / count));

    [Theory]
    [InlineData("api", "INT")]
    [InlineData("api", "TERM")]
    [InlineData("output", "INT")]
    [InlineData("output", "TERM")]
    public async Task A_signal_at_any_point_of_a_squash_ends_it_within_seconds_and_leaves_nothing(string variant, string signal)
    {
        var duration = await MeasureAsync(variant);
        var (kills, late, slowest) = await SignalsOverARunAsync(variant, tag => SquashArgs(variant, tag), duration, signal,
            // The image ID on stdout is the squash's last act: a signal after it (while the process exits) finds the
            // work done, tagged and cleaned up, whatever the exit code then says.
            (run, _) => Task.FromResult(run.StdOut.Contains("sha256:", StringComparison.Ordinal)),
            () => File.Delete(Path.Combine(_work, "out.tar")));
        Report($"squash {variant} SIG{signal}: {kills} kills (a whole squash {duration.TotalSeconds:0.0} s), {late} came after the end, slowest exit {slowest.TotalSeconds:0.00} s after the signal; leaks 0");
        kills.ShouldBe(Loop, "too many signals came after the squash had ended");
    }

    /// <summary>
    /// Sends <paramref name="signal"/> to runs of <paramref name="args"/> at points spread over <paramref name="duration"/>
    /// until <see cref="Loop"/> of them landed before the run's end, and checks each: exit 130 or 143 within the bound,
    /// none of its containers, no temp file, no tag. A run that had ended before its signal (exit 0, or
    /// <paramref name="ended"/> says its work was done) shortens the span the next signals are spread over, and is
    /// tried again. <paramref name="clean"/> runs after every round.
    /// </summary>
    private async Task<(int Kills, int Late, TimeSpan Slowest)> SignalsOverARunAsync(string name, Func<string, string[]> args, TimeSpan duration,
        string signal, Func<CliProcess, string, Task<bool>> ended, Action clean)
    {
        var expected = signal == "INT" ? 130 : 143;
        var (kills, late, slowest) = (0, 0, TimeSpan.Zero);
        while (kills < Loop && late < 2 * Loop)
        {
            var delay = Delays(duration, Loop).ElementAt(kills);
            var tag = NewTag();
            var started = Stopwatch.StartNew();
            using var run = Start(args(tag));
            await Task.Delay(delay);
            var clock = Stopwatch.StartNew();
            var sent = await run.SignalAsync(signal);
            (await run.WaitAsync(HangTimeout)).ShouldBeTrue($"SIG{signal} at {delay.TotalSeconds:0.0} s: still running {HangTimeout.TotalSeconds} s later.\n{run.StdErr}");
            var exitedAfter = clock.Elapsed;
            var what = $"{name}, SIG{signal} at {delay.TotalSeconds:0.00} s (exit {run.ExitCode} {exitedAfter.TotalSeconds:0.00} s later)\nstdout:\n{run.StdOut}\nstderr:\n{run.StdErr}";
            if (!sent || run.ExitCode == 0 || await ended(run, tag))
            {
                // The run finished before the signal came (the machine was faster this time): nothing to judge.
                late++;
                duration = TimeSpan.FromSeconds(Math.Min(duration.TotalSeconds, started.Elapsed.TotalSeconds - clock.Elapsed.TotalSeconds) * 0.9);
                if (await TaggedAsync(tag)) await _engine.DockerAsync(["rmi", tag]);
                clean();
                continue;
            }
            kills++;
            slowest = exitedAfter > slowest ? exitedAfter : slowest;
            run.ExitCode.ShouldBe(expected, what);
            exitedAfter.ShouldBeLessThan(ExitBound, what);
            (await ContainersOfAsync(run.Id)).ShouldBeEmpty(what);
            TempLeftovers().ShouldBeEmpty(what);
            (await TaggedAsync(tag)).ShouldBeFalse(what);
            clean();
        }
        return (kills, late, slowest);
    }

    [Theory]
    [InlineData("INT")]
    [InlineData("TERM")]
    [InlineData("KILL")]
    public async Task A_signal_while_the_export_container_exists_removes_it(string signal)
    {
        if (signal == "KILL")
        {
            await KillDuringExportAsync();
            return;
        }
        var (kills, late, slowest) = (0, 0, TimeSpan.Zero);
        for (var i = 0; kills < Loop && late < 2 * Loop; i++)
        {
            var tag = NewTag();
            using var run = Start(SquashArgs("api", tag));
            // The container appears once the final image's save is read.
            if (!await ExportContainerSeenAsync(run))
            {
                // The export was over between two looks: nothing to signal this round.
                late++;
                run.ExitCode.ShouldBe(0, run.StdErr);
                if (await TaggedAsync(tag)) await _engine.DockerAsync(["rmi", tag]);
                continue;
            }
            // Short delays, cycling (the export of the test image lasts about a second); shorter after a late one.
            await Task.Delay(TimeSpan.FromMilliseconds((late > 0 ? 20 : 60) * (i % 5)));
            var clock = Stopwatch.StartNew();
            var sent = await run.SignalAsync(signal);
            (await run.WaitAsync(HangTimeout)).ShouldBeTrue($"still running {HangTimeout.TotalSeconds} s after SIG{signal}.\n{run.StdErr}");
            var what = $"SIG{signal} during the export, round {i} (exit {run.ExitCode} {clock.Elapsed.TotalSeconds:0.00} s later)\nstderr:\n{run.StdErr}";
            if (!sent || run.ExitCode == 0 || run.StdOut.Contains("sha256:", StringComparison.Ordinal))
            {
                // The squash had ended before the signal: nothing to judge.
                late++;
                if (await TaggedAsync(tag)) await _engine.DockerAsync(["rmi", tag]);
                continue;
            }
            kills++;
            slowest = clock.Elapsed > slowest ? clock.Elapsed : slowest;
            run.ExitCode.ShouldBe(signal == "INT" ? 130 : 143, what);
            clock.Elapsed.ShouldBeLessThan(ExitBound, what);
            (await ContainersOfAsync(run.Id)).ShouldBeEmpty(what);
            TempLeftovers().ShouldBeEmpty(what);
            (await TaggedAsync(tag)).ShouldBeFalse(what);
        }
        Report($"squash export container SIG{signal}: {kills} kills ({late} came after the end), slowest exit {slowest.TotalSeconds:0.00} s after the signal; leaks 0");
        kills.ShouldBe(Loop, "too many signals came after the squash had ended");
    }

    /// <summary>SIGKILL while the export container exists: the container stays (nothing can remove it then), and the
    /// next run removes it.</summary>
    private async Task KillDuringExportAsync()
    {
        var (leftCount, exportEnded, unseen) = (0, 0, 0);
        for (var i = 0; i < Loop; i++)
        {
            var tag = NewTag();
            using var run = Start(SquashArgs("api", tag));
            if (!await ExportContainerSeenAsync(run))
            {
                // The export was over between two looks: this round is run again (a bounded number of times).
                unseen++;
                (unseen <= Loop).ShouldBeTrue("the export container was never seen in time");
                run.ExitCode.ShouldBe(0, run.StdErr);
                if (await TaggedAsync(tag)) await _engine.DockerAsync(["rmi", tag]);
                i--;
                continue;
            }
            await Task.Delay(TimeSpan.FromMilliseconds(60 * (i % 5)));
            (await run.SignalAsync("KILL")).ShouldBeTrue();
            (await run.WaitAsync(HangTimeout)).ShouldBeTrue();
            // Killed during the export, the container stays; a kill just after it finds it removed already.
            var left = await ContainersOfAsync(run.Id);
            if (left.Length > 0) leftCount++;
            else exportEnded++;
            if (left.Length > 0) left.ShouldStartWith(Sweeper.ExportPrefix + run.Id.ToString(CultureInfo.InvariantCulture) + ".");
            Directory.EnumerateDirectories(_temp, Sweeper.TempPrefix + "*").ShouldHaveSingleItem();

            await SweepingRunAsync(i);
            (await ContainersOfAsync(run.Id)).ShouldBeEmpty($"round {i}");
            TempLeftovers().ShouldBeEmpty($"round {i}");
        }
        Report($"squash export container SIGKILL: {Loop} kills, {leftCount} left the export container ({exportEnded} came just after the export; {unseen} rounds run again, the export over before it was seen); after the next run's sweep: leaks 0");
        leftCount.ShouldBeGreaterThan(0, "no kill came during the export");
    }

    /// <summary>
    /// Waits until <paramref name="run"/>'s export container exists (true), or the squash has ended without it having been
    /// seen (false: the export of the small test image can be over between two looks, each a <c>docker ps</c>).
    /// </summary>
    private async Task<bool> ExportContainerSeenAsync(CliProcess run)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while ((await ContainersOfAsync(run.Id)).Length == 0)
        {
            if (run.HasExited)
            {
                (await run.WaitAsync(HangTimeout)).ShouldBeTrue();
                return false;
            }
            (DateTime.UtcNow < deadline).ShouldBeTrue("no export container within 2 minutes");
            await Task.Delay(20);
        }
        return true;
    }

    /// <summary>Runs a command that touches the engine, which sweeps first; it must succeed.</summary>
    private async Task SweepingRunAsync(int round)
    {
        // Alternately a build (its own sweep, in BuildCommand) and an image verb (EngineAccess).
        File.WriteAllText(Path.Combine(_work, "Dockerfile"), "FROM busybox\n");
        string[] args = round % 2 == 0 ? ["layers", "busybox"] : ["build", "-q", "--network", "none", _work];
        using var next = Start(args);
        (await next.WaitAsync(TimeSpan.FromMinutes(2))).ShouldBeTrue("the sweeping run hung");
        next.ExitCode.ShouldBe(0, next.StdErr);
        next.StdErr.ShouldNotContain("warning");
    }

    [Theory]
    [InlineData("api")]
    [InlineData("output")]
    public async Task After_SIGKILL_at_any_point_of_a_squash_the_next_run_sweeps_what_it_left(string variant)
    {
        var duration = await MeasureAsync(variant);
        var (leftContainers, leftTemp) = (0, 0);
        var round = 0;
        foreach (var delay in Delays(duration, Loop))
        {
            var tag = NewTag();
            using var run = Start(SquashArgs(variant, tag));
            await Task.Delay(delay);
            await run.SignalAsync("KILL");
            (await run.WaitAsync(HangTimeout)).ShouldBeTrue();
            var pid = run.Id;
            if ((await ContainersOfAsync(pid)).Length > 0) leftContainers++;
            // The fast path's partial output (next to the output file, not in a temp directory) is not the sweep's.
            foreach (var partial in Directory.EnumerateFiles(_work, ".*tmp-*")) File.Delete(partial);
            if (Directory.EnumerateDirectories(_temp, Sweeper.TempPrefix + "*").Any()) leftTemp++;

            await SweepingRunAsync(round++);
            var what = $"{variant}, SIGKILL at {delay.TotalSeconds:0.00} s";
            (await ContainersOfAsync(pid)).ShouldBeEmpty(what);
            TempLeftovers().ShouldBeEmpty(what);
            if (await TaggedAsync(tag)) await _engine.DockerAsync(["rmi", tag]); // killed after the tag: a finished squash
            File.Delete(Path.Combine(_work, "out.tar"));
        }
        Report($"squash {variant} SIGKILL: {Loop} kills over a whole squash of {duration.TotalSeconds:0.0} s; the killed process left containers {leftContainers} times and temp files {leftTemp} times; after the next run's sweep: leaks 0");
    }

    [Fact]
    public async Task After_SIGKILL_in_the_middle_of_a_run_the_next_run_removes_the_build_container()
    {
        var dir = Directory.CreateDirectory(Path.Combine(_work, "build")).FullName;
        // The step line shows the command as written; only the RUN itself prints the product.
        File.WriteAllText(Path.Combine(dir, "Dockerfile"), "FROM busybox\nRUN echo started-$((6*7)) && sleep 300\n");
        for (var round = 0; round < Loop; round++)
        {
            using var build = Start(["build", "--builder", "classic", "--network", "none", "--no-cache", "-t", NewTag(), dir]);
            (await build.WaitForOutputAsync("started-42", TimeSpan.FromMinutes(2))).ShouldBeTrue($"the RUN did not start:\n{build.StdOut}\n{build.StdErr}");
            (await build.SignalAsync("KILL")).ShouldBeTrue();
            (await build.WaitAsync(HangTimeout)).ShouldBeTrue();
            // The kill left the RUN's container, running, under a name that says whose it is.
            var left = await ContainersOfAsync(build.Id);
            left.ShouldStartWith(Sweeper.BuildPrefix + build.Id.ToString(CultureInfo.InvariantCulture) + ".");
            Directory.EnumerateDirectories(_temp, Sweeper.TempPrefix + "*").ShouldHaveSingleItem();

            await SweepingRunAsync(round);
            (await ContainersOfAsync(build.Id)).ShouldBeEmpty();
            TempLeftovers().ShouldBeEmpty();
        }
        Report($"build SIGKILL mid-RUN: {Loop} kills, each left its container; after the next run's sweep: leaks 0");
    }

    /// <summary>A build of several steps (RUNs with their containers, a COPY, a commit each), classic executor.</summary>
    private string BuildDirectory()
    {
        var dir = Path.Combine(_work, "steps");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "payload"), new string('p', 100_000));
        File.WriteAllText(Path.Combine(dir, "Dockerfile"),
            "FROM busybox\nRUN echo one > /one && sleep 0.3\nCOPY payload /payload\nRUN echo two > /two && sleep 0.3\nENV X=1\nRUN cat /one /two > /three\n");
        return dir;
    }

    [Theory]
    [InlineData("INT")]
    [InlineData("TERM")]
    public async Task A_signal_at_any_point_of_a_build_ends_it_within_seconds_and_leaves_nothing(string signal)
    {
        var dir = BuildDirectory();
        string[] Args(string tag) => ["build", "--builder", "classic", "--network", "none", "--no-cache", "-t", tag, dir];
        var measureTag = NewTag();
        var clock0 = Stopwatch.StartNew();
        using (var whole = Start(Args(measureTag)))
        {
            (await whole.WaitAsync(TimeSpan.FromMinutes(5))).ShouldBeTrue("the build did not finish within 5 minutes");
            whole.ExitCode.ShouldBe(0, whole.StdErr);
            (await ContainersOfAsync(whole.Id)).ShouldBeEmpty();
        }
        var duration = clock0.Elapsed;
        // Tagging is the build's last act: a signal after it (while the process exits) finds the work done.
        var (kills, late, slowest) = await SignalsOverARunAsync("build", Args, duration, signal, (_, tag) => TaggedAsync(tag), () => { });
        Report($"build SIG{signal}: {kills} kills (a whole build {duration.TotalSeconds:0.0} s), {late} came after the end, slowest exit {slowest.TotalSeconds:0.00} s after the signal; leaks 0");
        kills.ShouldBe(Loop, "too many signals came after the build had ended");
    }
}
