using LayerTool.Build.Plans.Run;

namespace LayerTool.Build.Tests.Plans.Run;

public sealed class PlanSchedulerTests
{
    // base -> (left, right) -> top (a diamond), base -> lone; other stands alone.
    private static readonly PlanJob[] Diamond =
    [
        new("base", []),
        new("left", ["base"]),
        new("right", ["base"]),
        new("top", ["left", "right"]),
        new("lone", ["base"]),
        new("other", []),
    ];

    /// <summary>A fake build: records start and end order and the peak number running at once.</summary>
    private sealed class Recorder
    {
        private readonly Lock _gate = new();
        private int _running;

        public List<string> Started { get; } = [];

        public List<string> Finished { get; } = [];

        public List<(string Name, int Engine)> Placed { get; } = [];

        public int Peak { get; private set; }

        public HashSet<string> Failing { get; init; } = [];

        public TimeSpan Delay { get; init; } = TimeSpan.FromMilliseconds(20);

        public async Task<PlanJobOutput> RunAsync(PlanJobRequest request, CancellationToken ct)
        {
            lock (_gate)
            {
                Started.Add(request.Job.Name);
                Placed.Add((request.Job.Name, request.Engine));
                Peak = Math.Max(Peak, ++_running);
                foreach (var parent in request.Job.Parents)
                    Finished.ShouldContain(parent, $"{request.Job.Name} started before its parent {parent} was done");
            }
            try
            {
                await Task.Delay(Delay, ct);
                if (Failing.Contains(request.Job.Name)) throw new BuildException($"RUN exit 1 in {request.Job.Name}\nsecond line");
                return new PlanJobOutput("sha256:" + request.Job.Name, true, request.Engine);
            }
            finally
            {
                lock (_gate)
                {
                    _running--;
                    Finished.Add(request.Job.Name);
                }
            }
        }
    }

    [Fact]
    public async Task Every_job_runs_after_its_parents_and_no_more_than_jobs_run_at_once()
    {
        var recorder = new Recorder();
        var summary = await PlanScheduler.RunAsync(Diamond, 2, 2, recorder.RunAsync, null, CancellationToken.None);
        summary.Succeeded.ShouldBeTrue();
        summary.Results.Select(r => r.Name).ShouldBe(Diamond.Select(j => j.Name));
        summary.Results.ShouldAllBe(r => r.State == PlanImageState.Built);
        recorder.Started.Count.ShouldBe(6);
        recorder.Peak.ShouldBe(2);
    }

    [Fact]
    public async Task Independent_jobs_run_side_by_side_up_to_the_limit()
    {
        var wide = Enumerable.Range(0, 6).Select(i => new PlanJob($"svc{i}", [])).ToArray();
        var recorder = new Recorder { Delay = TimeSpan.FromMilliseconds(100) };
        await PlanScheduler.RunAsync(wide, 3, 3, recorder.RunAsync, null, CancellationToken.None);
        recorder.Peak.ShouldBe(3);
        // One a engine: the least-loaded engine takes the next job.
        recorder.Placed.Take(3).Select(p => p.Engine).Order().ShouldBe([0, 1, 2]);
    }

    [Fact]
    public async Task A_failure_stops_only_its_descendants_and_the_others_finish()
    {
        var recorder = new Recorder { Failing = ["left"] };
        var events = new List<PlanEvent>();
        var summary = await PlanScheduler.RunAsync(Diamond, 2, 2, recorder.RunAsync, new SyncProgress(events.Add), CancellationToken.None);
        summary.Succeeded.ShouldBeFalse();
        State(summary, "left").ShouldBe(PlanImageState.Failed);
        summary.Results.Single(r => r.Name == "left").Message.ShouldBe("RUN exit 1 in left", "the first line of the error");
        State(summary, "top").ShouldBe(PlanImageState.NotStarted);
        summary.Results.Single(r => r.Name == "top").Message.ShouldBe("left failed");
        foreach (var finished in new[] { "base", "right", "lone", "other" }) State(summary, finished).ShouldBe(PlanImageState.Built);
        recorder.Started.ShouldNotContain("top");
        events.ShouldContain(e => e.Name == "top" && e.State == PlanImageState.NotStarted);
    }

    [Fact]
    public async Task A_failed_root_stops_the_whole_subtree_transitively()
    {
        var recorder = new Recorder { Failing = ["base"] };
        var summary = await PlanScheduler.RunAsync(Diamond, 1, 1, recorder.RunAsync, null, CancellationToken.None);
        recorder.Started.ShouldBe(["base", "other"], ignoreOrder: true);
        foreach (var name in new[] { "left", "right", "top", "lone" })
        {
            State(summary, name).ShouldBe(PlanImageState.NotStarted);
            summary.Results.Single(r => r.Name == name).Message.ShouldBe("base failed");
        }
        State(summary, "other").ShouldBe(PlanImageState.Built);
    }

    [Fact]
    public async Task Up_to_date_jobs_are_reported_as_such()
    {
        var summary = await PlanScheduler.RunAsync(Diamond, 1, 1,
            (r, _) => Task.FromResult(new PlanJobOutput("sha256:" + r.Job.Name, r.Job.Name != "top", r.Job.Name == "top" ? null : r.Engine, r.Job.Name == "top" ? "up to date" : null)),
            null, CancellationToken.None);
        State(summary, "top").ShouldBe(PlanImageState.UpToDate);
        summary.InState(PlanImageState.Built).Count().ShouldBe(5);
        summary.Succeeded.ShouldBeTrue();
    }

    [Fact]
    public async Task Cancelling_stops_the_running_jobs_and_starts_no_other()
    {
        using var cancel = new CancellationTokenSource();
        var started = new TaskCompletionSource();
        var cancelledInside = 0;
        async Task<PlanJobOutput> Run(PlanJobRequest r, CancellationToken ct)
        {
            started.TrySetResult();
            try
            {
                await Task.Delay(Timeout.Infinite, ct);
            }
            catch (OperationCanceledException)
            {
                Interlocked.Increment(ref cancelledInside);
                throw;
            }
            return new PlanJobOutput("x", true, r.Engine);
        }
        var run = PlanScheduler.RunAsync(Diamond, 2, 2, Run, null, cancel.Token);
        await started.Task;
        await cancel.CancelAsync();
        var summary = await run;
        summary.Cancelled.ShouldBeTrue();
        summary.Succeeded.ShouldBeFalse();
        cancelledInside.ShouldBe(2, "both running jobs (base, other) saw their token cancelled");
        State(summary, "top").ShouldBe(PlanImageState.NotStarted);
        summary.Results.Where(r => r.State == PlanImageState.Failed).Select(r => r.Message).ShouldAllBe(m => m == "cancelled");
    }

    [Fact]
    public async Task A_child_goes_to_the_engine_of_its_parent_when_engines_are_equally_loaded()
    {
        var chain = new PlanJob[] { new("a", []), new("b", ["a"]), new("c", ["b"]) };
        var recorder = new Recorder();
        // The parent reports engine 2 (as a job may, after starting a dind engine): the child follows it.
        var summary = await PlanScheduler.RunAsync(chain, 3, 3, async (r, ct) =>
        {
            await recorder.RunAsync(r, ct);
            return new PlanJobOutput("sha256:" + r.Job.Name, true, r.Job.Name == "a" ? 2 : r.Engine);
        }, null, CancellationToken.None);
        summary.Succeeded.ShouldBeTrue();
        recorder.Placed.ShouldBe([("a", 0), ("b", 2), ("c", 2)]);
    }

    [Fact]
    public async Task The_longest_chain_starts_first()
    {
        // With one slot: "deep" heads a chain of three and goes before "flat", though "flat" comes first in the file.
        var jobs = new PlanJob[] { new("flat", []), new("deep", []), new("mid", ["deep"]), new("leaf", ["mid"]) };
        var recorder = new Recorder();
        await PlanScheduler.RunAsync(jobs, 1, 1, recorder.RunAsync, null, CancellationToken.None);
        recorder.Started.First().ShouldBe("deep");
    }

    [Fact]
    public async Task Parents_outputs_reach_their_children()
    {
        IReadOnlyDictionary<string, PlanJobOutput>? seen = null;
        await PlanScheduler.RunAsync(Diamond, 2, 2, (r, _) =>
        {
            if (r.Job.Name == "top") seen = r.Parents;
            return Task.FromResult(new PlanJobOutput("sha256:" + r.Job.Name, true, r.Engine));
        }, null, CancellationToken.None);
        seen.ShouldNotBeNull();
        seen.Keys.ShouldBe(["left", "right"], ignoreOrder: true);
        seen["left"].ImageId.ShouldBe("sha256:left");
    }

    [Fact]
    public async Task Unknown_parents_and_cycles_are_refused()
    {
        await Should.ThrowAsync<ArgumentException>(() => PlanScheduler.RunAsync([new PlanJob("a", ["ghost"])], 1, 1,
            (r, _) => Task.FromResult(new PlanJobOutput("x", true, 0)), null, CancellationToken.None));
        var ex = await Should.ThrowAsync<ArgumentException>(() => PlanScheduler.RunAsync([new PlanJob("a", ["b"]), new PlanJob("b", ["a"])], 1, 1,
            (r, _) => Task.FromResult(new PlanJobOutput("x", true, 0)), null, CancellationToken.None));
        ex.Message.ShouldContain("cycle");
    }

    private static PlanImageState State(PlanRunSummary summary, string name) => summary.Results.Single(r => r.Name == name).State;

    private sealed class SyncProgress(Action<PlanEvent> report) : IProgress<PlanEvent>
    {
        private readonly Lock _gate = new();

        public void Report(PlanEvent value)
        {
            lock (_gate) report(value);
        }
    }
}
