using System.Globalization;
using System.Text;

namespace LayerTool.Build.Progress;

/// <summary>
/// docker's BuildKit <c>--progress plain</c> output: a block per vertex (<c>#5 [2/3] RUN ...</c>, its digest,
/// sub-tasks, log lines <c>#5 0.123 text</c> timed from the vertex's start) ending in <c>#5 CACHED</c>,
/// <c>#5 DONE 0.1s</c>, <c>#5 ERROR: ...</c> or <c>#5 CANCELED</c>; blocks apart by an empty line, and
/// <c>#5 ...</c> when another vertex's output interrupts one that is still running. Sub-tasks appear when they end.
/// </summary>
/// <remarks>
/// docker chooses which running vertex to show next by how fast each produces output; this renderer is
/// deterministic instead: vertices that ended in an increment first (by end time), then the one shown
/// last if it is still busy, else the first busy one. For one stage at a time the output is docker's.
/// </remarks>
public sealed class PlainProgress(TextWriter writer) : IBuildKitProgress
{
    private sealed class Shown
    {
        public List<string> Logs { get; } = [];
        public bool LogsPartial { get; set; }
        public HashSet<string> StatusUpdates { get; } = new(StringComparer.Ordinal);
        public bool HeaderShown { get; set; }
        public bool Finished { get; set; }
        public bool Pending { get; set; }
    }

    private readonly Dictionary<string, Shown> _shown = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private string? _current;
    private bool _anything;

    public void OnStatus(BuildTrace trace, StatusUpdate update, IReadOnlyList<TracedVertex> touched)
    {
        ArgumentNullException.ThrowIfNull(trace);
        ArgumentNullException.ThrowIfNull(update);
        ArgumentNullException.ThrowIfNull(touched);
        lock (_gate)
        {
            foreach (var s in update.Statuses) State(s.Vertex).StatusUpdates.Add(s.Id);
            foreach (var l in update.Logs) AddLog(trace, l);
            foreach (var v in touched) State(v.Digest).Pending = true;

            var pending = trace.Vertices.Where(v => State(v.Digest).Pending).ToList();
            var completed = pending.Where(v => v.Completed is not null)
                .OrderBy(v => v.Digest == _current ? 0 : 1).ThenBy(v => v.Completed).ThenBy(v => v.Index).ToList();
            foreach (var v in completed) Print(trace, v);
            var rest = pending.Where(v => v.Completed is null).ToList();
            if (rest.Count > 0)
            {
                var next = rest.FirstOrDefault(v => v.Digest == _current) ?? rest[0];
                Print(trace, next);
            }
            writer.Flush();
        }
    }

    /// <summary>Ignored, as docker's BuildKit output does: the engine's <c>stream</c> lines ("Successfully tagged") repeat the trace.</summary>
    public void OnStream(string text) { }

    public void OnImageId(string imageId) { }

    public void Complete()
    {
        lock (_gate) writer.Flush();
    }

    private Shown State(string digest)
    {
        if (!_shown.TryGetValue(digest, out var s)) _shown[digest] = s = new Shown();
        return s;
    }

    private void AddLog(BuildTrace trace, VertexLogUpdate log)
    {
        var v = trace.Find(log.Vertex);
        if (v is null) return;
        var state = State(log.Vertex);
        var text = Encoding.UTF8.GetString(log.Message.Span);
        if (text.Length == 0) return;
        var parts = text.Split('\n');
        // The text after the last newline is an unfinished line (empty when the message ended with one).
        var complete = text.EndsWith('\n');
        var count = complete ? parts.Length - 1 : parts.Length;
        for (var i = 0; i < count; i++)
        {
            if (i == 0 && state.LogsPartial)
            {
                // The rest of a line whose start was already added (or already printed).
                if (state.Logs.Count > 0) state.Logs[^1] += parts[0];
                else state.Logs.Add(parts[0]);
                continue;
            }
            var seconds = v.Started is { } started && log.Timestamp is { } at ? (at - started).TotalSeconds : 0;
            var precision = seconds < 10 ? 3 : seconds < 100 ? 2 : 1;
            state.Logs.Add(string.Create(CultureInfo.InvariantCulture, $"#{v.Index} {seconds.ToString("F" + precision, CultureInfo.InvariantCulture)} {parts[i]}"));
        }
        state.LogsPartial = !complete;
    }

    private void Print(BuildTrace trace, TracedVertex v)
    {
        var state = State(v.Digest);
        state.Pending = false;
        if (state.Finished) return;
        if (v.Digest != _current)
        {
            if (_current is not null && trace.Find(_current) is { } old && !State(old.Digest).Finished)
            {
                if (State(old.Digest).LogsPartial) writer.WriteLine();
                writer.WriteLine($"#{old.Index} ...");
            }
            if (_anything) writer.WriteLine();
            writer.WriteLine($"#{v.Index} {v.Name}");
            if (!state.HeaderShown) writer.WriteLine($"#{v.Index} {v.Digest}");
            state.HeaderShown = true;
            _anything = true;
            _current = v.Digest;
        }
        // A sub-task is printed when it ends, as docker's plain output shows it ("exporting layers 0.1s done").
        foreach (var s in v.Statuses.Where(s => state.StatusUpdates.Contains(s.Id) && s.Completed is not null))
            writer.WriteLine($"#{v.Index} {StatusText(s)}");
        state.StatusUpdates.Clear();
        for (var i = 0; i < state.Logs.Count; i++)
        {
            writer.Write(state.Logs[i]);
            if (i != state.Logs.Count - 1 || !state.LogsPartial) writer.WriteLine();
        }
        var partial = state.LogsPartial && state.Logs.Count > 0;
        state.Logs.Clear();
        if (v.Error.Length > 0)
        {
            if (partial) writer.WriteLine();
            writer.WriteLine(BuildTrace.IsCancellation(v.Error) ? $"#{v.Index} CANCELED" : $"#{v.Index} ERROR: {v.Error}");
        }
        else if (v.Cached)
        {
            writer.WriteLine($"#{v.Index} CACHED");
        }
        else if (v.Completed is { } done)
        {
            var seconds = v.Started is { } started ? (done - started).TotalSeconds : 0;
            writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"#{v.Index} DONE {seconds:0.0}s"));
        }
        if (v.Completed is not null || v.Error.Length > 0)
        {
            state.Finished = true;
            _current = null;
        }
    }

    /// <summary><c>transferring context: 2B done</c>, <c>sha256:... 1.2MB / 3.4MB 0.5s</c>.</summary>
    public static string StatusText(VertexStatusUpdate s)
    {
        var text = new StringBuilder(s.Id);
        if (s.Total != 0) text.Append(' ').Append(HumanBytes(s.Current)).Append(" / ").Append(HumanBytes(s.Total));
        else if (s.Current != 0) text.Append(' ').Append(HumanBytes(s.Current));
        var end = s.Completed ?? s.Timestamp;
        if (s.Started is { } started && end is { } e && (e - started).TotalSeconds > 0.01)
            text.Append(string.Create(CultureInfo.InvariantCulture, $" {(e - started).TotalSeconds:0.0}s"));
        if (s.Completed is not null) text.Append(" done");
        return text.ToString();
    }

    /// <summary>go-units' decimal sizes as docker prints them: <c>2B</c>, <c>1.23kB</c>, <c>45.6MB</c>.</summary>
    public static string HumanBytes(long bytes)
    {
        string[] units = ["B", "kB", "MB", "GB", "TB"];
        double value = bytes;
        var unit = 0;
        while (value >= 1000 && unit < units.Length - 1)
        {
            value /= 1000;
            unit++;
        }
        return value.ToString(unit == 0 ? "0" : "0.##", CultureInfo.InvariantCulture) + units[unit];
    }
}
