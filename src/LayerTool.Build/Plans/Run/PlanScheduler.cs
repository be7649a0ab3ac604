using System.Diagnostics;

namespace LayerTool.Build.Plans.Run;

/// <summary>What became of one image of a plan run.</summary>
public enum PlanImageState
{
    /// <summary>Waiting for its parents or for a free build slot.</summary>
    Waiting,

    /// <summary>Being checked or built.</summary>
    Running,

    /// <summary>Built in this run.</summary>
    Built,

    /// <summary>Its inputs were unchanged and its output exists: nothing was built.</summary>
    UpToDate,

    /// <summary>Its build failed.</summary>
    Failed,

    /// <summary>Never started: a parent failed, or the run was cancelled first.</summary>
    NotStarted,
}

/// <summary>One node of the DAG the scheduler runs: an image name and the names of the images it needs.</summary>
/// <param name="Name">Unique in the run.</param>
/// <param name="Parents">Images that must be done (built or up to date) before this one starts.</param>
public sealed record PlanJob(string Name, IReadOnlyList<string> Parents);

/// <summary>What a job produced.</summary>
/// <param name="ImageId">The image ID (<c>sha256:...</c>), the same on every engine that holds the image.</param>
/// <param name="Built">True when it was built; false when it was up to date.</param>
/// <param name="Engine">The pool index of the engine that built it (null when it was up to date: it lives in the home engine).</param>
/// <param name="Detail">A short note for the summary (e.g. "up to date", "12 steps, 3 cached"); may be null.</param>
public sealed record PlanJobOutput(string ImageId, bool Built, int? Engine, string? Detail = null);

/// <summary>What the scheduler gives a job to run: where, and what its parents produced.</summary>
/// <param name="Job">The job.</param>
/// <param name="Engine">The pool index of the engine chosen for it.</param>
/// <param name="Parents">Each parent's output, by name.</param>
public sealed record PlanJobRequest(PlanJob Job, int Engine, IReadOnlyDictionary<string, PlanJobOutput> Parents);

/// <summary>A state change, for progress output.</summary>
/// <param name="Name">The image.</param>
/// <param name="State">Its new state.</param>
/// <param name="Engine">The engine's pool index while running or once built; null otherwise.</param>
/// <param name="Elapsed">Time since the job started (zero before it did).</param>
/// <param name="Message">The error's first line (failed), the failed parent (not started), a short detail (done).</param>
public sealed record PlanEvent(string Name, PlanImageState State, int? Engine, TimeSpan Elapsed, string? Message);

/// <summary>The end state of one image.</summary>
/// <param name="Name">The image.</param>
/// <param name="State">Built, up to date, failed or not started.</param>
/// <param name="Output">What it produced (built or up to date).</param>
/// <param name="Engine">The engine it ran on (null when it never started).</param>
/// <param name="Elapsed">How long its job took.</param>
/// <param name="Message">Failed: the error's first line; not started: why; else a short detail.</param>
/// <param name="Error">Failed: the exception.</param>
public sealed record PlanJobResult(string Name, PlanImageState State, PlanJobOutput? Output, int? Engine, TimeSpan Elapsed, string? Message, Exception? Error);

/// <summary>The outcome of a run, one result per job in the order the jobs were given.</summary>
public sealed record PlanRunSummary(IReadOnlyList<PlanJobResult> Results, TimeSpan Elapsed, bool Cancelled)
{
    public IEnumerable<PlanJobResult> InState(PlanImageState state) => Results.Where(r => r.State == state);

    /// <summary>True when every job was built or up to date.</summary>
    public bool Succeeded => !Cancelled && Results.All(r => r.State is PlanImageState.Built or PlanImageState.UpToDate);
}

/// <summary>
/// Runs a DAG of jobs on a pool of engines: a job starts once all its parents are done, with at most
/// <c>maxParallel</c> jobs at once. Among ready jobs the one with the longest chain of descendants goes first
/// (the critical path sets the run's length); a job goes to the least-loaded engine, ties broken for the engine
/// that holds most of its parents (no hand-off needed), then the lowest index. A failed job stops only its
/// descendants; the others finish. Cancelling stops the running jobs (their tokens are cancelled) and starts no
/// other. Pure: the engines are indices, the work is the <c>run</c> delegate.
/// </summary>
public static class PlanScheduler
{
    /// <param name="jobs">The DAG, parents named; every parent must be a job of the list and the graph acyclic.</param>
    /// <param name="engineCount">How many engines the pool has (at least 1).</param>
    /// <param name="maxParallel">How many jobs may run at once (at least 1).</param>
    /// <param name="run">Runs one job on the engine it is given; an exception is that job's failure.</param>
    /// <param name="events">Told every state change (called under a lock, in order).</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    public static async Task<PlanRunSummary> RunAsync(IReadOnlyList<PlanJob> jobs, int engineCount, int maxParallel,
        Func<PlanJobRequest, CancellationToken, Task<PlanJobOutput>> run, IProgress<PlanEvent>? events, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(jobs);
        ArgumentNullException.ThrowIfNull(run);
        ArgumentOutOfRangeException.ThrowIfLessThan(engineCount, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxParallel, 1);
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < jobs.Count; i++)
            if (!index.TryAdd(jobs[i].Name, i)) throw new ArgumentException($"two jobs are named {jobs[i].Name}", nameof(jobs));
        var children = jobs.Select(_ => new List<int>()).ToArray();
        var missing = new int[jobs.Count];
        for (var i = 0; i < jobs.Count; i++)
        {
            foreach (var parent in jobs[i].Parents.Distinct(StringComparer.Ordinal))
            {
                if (!index.TryGetValue(parent, out var p)) throw new ArgumentException($"{jobs[i].Name} needs {parent}, which is not a job", nameof(jobs));
                children[p].Add(i);
                missing[i]++;
            }
        }
        var height = Heights(jobs, children);

        var clock = Stopwatch.StartNew();
        var gate = new Lock();
        var results = new PlanJobResult?[jobs.Count];
        var outputs = new Dictionary<string, PlanJobOutput>(StringComparer.Ordinal);
        var load = new int[engineCount];
        var running = new Dictionary<Task<PlanJobResult>, (int Job, int Engine)>();
        var ready = new List<int>();
        for (var i = 0; i < jobs.Count; i++)
            if (missing[i] == 0) ready.Add(i);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);

        void Report(int job, PlanImageState state, int? engine, TimeSpan elapsed, string? message)
        {
            events?.Report(new PlanEvent(jobs[job].Name, state, engine, elapsed, message));
        }

        // Marks every descendant of a failed job as not started (each once, with the first failed ancestor).
        void StopDescendants(int failed)
        {
            var pending = new Stack<int>(children[failed]);
            while (pending.Count > 0)
            {
                var c = pending.Pop();
                if (results[c] is not null) continue;
                results[c] = new PlanJobResult(jobs[c].Name, PlanImageState.NotStarted, null, null, TimeSpan.Zero, $"{jobs[failed].Name} failed", null);
                Report(c, PlanImageState.NotStarted, null, TimeSpan.Zero, $"{jobs[failed].Name} failed");
                ready.Remove(c);
                foreach (var g in children[c]) pending.Push(g);
            }
        }

        int ChooseEngine(int job)
        {
            var best = 0;
            var bestAffinity = -1;
            for (var e = 0; e < engineCount; e++)
            {
                var affinity = jobs[job].Parents.Count(p => outputs.TryGetValue(p, out var o) && o.Engine == e);
                if (load[e] < load[best] || (load[e] == load[best] && affinity > bestAffinity))
                {
                    best = e;
                    bestAffinity = affinity;
                }
            }
            return best;
        }

        async Task<PlanJobResult> RunOne(int job, int engine, IReadOnlyDictionary<string, PlanJobOutput> parents)
        {
            var watch = Stopwatch.StartNew();
            try
            {
                await Task.Yield();
                var output = await run(new PlanJobRequest(jobs[job], engine, parents), cancel.Token).ConfigureAwait(false);
                return new PlanJobResult(jobs[job].Name, output.Built ? PlanImageState.Built : PlanImageState.UpToDate, output,
                    output.Engine ?? engine, watch.Elapsed, output.Detail, null);
            }
            catch (Exception e) when (cancel.IsCancellationRequested)
            {
                return new PlanJobResult(jobs[job].Name, PlanImageState.Failed, null, engine, watch.Elapsed, "cancelled", e);
            }
#pragma warning disable CA1031 // A job's failure, whatever its type, is that job's result: it stops its descendants only.
            catch (Exception e)
#pragma warning restore CA1031
            {
                return new PlanJobResult(jobs[job].Name, PlanImageState.Failed, null, engine, watch.Elapsed, FirstLine(e.Message), e);
            }
        }

        while (true)
        {
            lock (gate)
            {
                if (!cancel.IsCancellationRequested)
                {
                    // Longest chain of descendants first; file order among equals.
                    ready.Sort((a, b) => height[a] != height[b] ? height[b].CompareTo(height[a]) : a.CompareTo(b));
                    while (ready.Count > 0 && running.Count < maxParallel)
                    {
                        var job = ready[0];
                        ready.RemoveAt(0);
                        var engine = ChooseEngine(job);
                        load[engine]++;
                        var parents = jobs[job].Parents.Distinct(StringComparer.Ordinal).ToDictionary(p => p, p => outputs[p], StringComparer.Ordinal);
                        Report(job, PlanImageState.Running, engine, TimeSpan.Zero, null);
                        running.Add(RunOne(job, engine, parents), (job, engine));
                    }
                }
                if (running.Count == 0) break;
            }
            var done = await Task.WhenAny(running.Keys).ConfigureAwait(false);
            var result = await done.ConfigureAwait(false);
            lock (gate)
            {
                var (job, engine) = running[done];
                running.Remove(done);
                results[job] = result;
                load[engine]--;
                Report(job, result.State, result.Engine, result.Elapsed, result.Message);
                if (result.State == PlanImageState.Failed)
                {
                    // After a cancel, what did not start is "cancelled" (below), not the victim of a failure.
                    if (!cancel.IsCancellationRequested) StopDescendants(job);
                }
                else
                {
                    outputs[jobs[job].Name] = result.Output!;
                    foreach (var c in children[job])
                        if (--missing[c] == 0 && results[c] is null) ready.Add(c);
                }
            }
        }

        var cancelled = cancellationToken.IsCancellationRequested;
        for (var i = 0; i < jobs.Count; i++)
        {
            if (results[i] is not null) continue;
            results[i] = new PlanJobResult(jobs[i].Name, PlanImageState.NotStarted, null, null, TimeSpan.Zero, cancelled ? "cancelled" : "not reached", null);
            Report(i, PlanImageState.NotStarted, null, TimeSpan.Zero, results[i]!.Message);
        }
        return new PlanRunSummary([.. results.Select(r => r!)], clock.Elapsed, cancelled);
    }

    /// <summary>For each job, the number of jobs on its longest chain of descendants (a leaf: 1).</summary>
    internal static int[] Heights(IReadOnlyList<PlanJob> jobs, List<int>[] children)
    {
        var height = new int[jobs.Count];
        var visiting = new bool[jobs.Count];
        int Height(int job)
        {
            if (height[job] > 0) return height[job];
            if (visiting[job]) throw new ArgumentException($"the jobs have a cycle through {jobs[job].Name}", nameof(jobs));
            visiting[job] = true;
            var h = 1;
            foreach (var c in children[job]) h = Math.Max(h, 1 + Height(c));
            visiting[job] = false;
            return height[job] = h;
        }
        for (var i = 0; i < jobs.Count; i++) Height(i);
        return height;
    }

    /// <summary>The first non-empty line of a message.</summary>
    public static string FirstLine(string? message)
    {
        if (string.IsNullOrWhiteSpace(message)) return "(no message)";
        foreach (var line in message.Split('\n'))
            if (line.Trim().Length > 0) return line.Trim();
        return message.Trim();
    }
}
