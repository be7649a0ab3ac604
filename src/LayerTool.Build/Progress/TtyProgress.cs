using System.Globalization;
using System.Text;

namespace LayerTool.Build.Progress;

/// <summary>
/// The live view on a terminal (docker's <c>tty</c> progress): a header with the elapsed time and the steps
/// done, then one line per vertex with its time, redrawn in place while the build runs (about ten times a
/// second). A failed step's last output lines are printed under the view at the end.
/// </summary>
public sealed class TtyProgress : IBuildKitProgress, IDisposable
{
    private const int LogLinesKept = 10;
    private readonly TextWriter _writer;
    private readonly int _height;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, List<string>> _logs = new(StringComparer.Ordinal);
    private readonly long _start;
    private readonly ITimer _ticker;
    private BuildTrace? _trace;
    private int _drawnLines;
    private bool _done;

    /// <param name="writer">The terminal.</param>
    /// <param name="height">The terminal's height in lines: the view shows at most this many, the newest.</param>
    /// <param name="time">The clock (tests give their own).</param>
    public TtyProgress(TextWriter writer, int height, TimeProvider? time = null)
    {
        _writer = writer ?? throw new ArgumentNullException(nameof(writer));
        _height = Math.Max(3, height);
        _time = time ?? TimeProvider.System;
        _start = _time.GetTimestamp();
        _ticker = _time.CreateTimer(_ => Redraw(), null, TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(100));
    }

    public void OnStatus(BuildTrace trace, StatusUpdate update, IReadOnlyList<TracedVertex> touched)
    {
        ArgumentNullException.ThrowIfNull(update);
        lock (_gate)
        {
            _trace = trace;
            foreach (var l in update.Logs)
            {
                if (!_logs.TryGetValue(l.Vertex, out var lines)) _logs[l.Vertex] = lines = [];
                foreach (var line in Encoding.UTF8.GetString(l.Message.Span).Split('\n', StringSplitOptions.RemoveEmptyEntries))
                {
                    lines.Add(line);
                    if (lines.Count > LogLinesKept) lines.RemoveAt(0);
                }
            }
        }
    }

    public void OnStream(string text) { }

    public void OnImageId(string imageId) { }

    public void Complete()
    {
        lock (_gate)
        {
            if (_done) return;
            DrawLocked();
            _done = true;
            if (_trace?.FirstError is { } failed)
            {
                _writer.WriteLine("------");
                _writer.WriteLine($" > {failed.Name}:");
                foreach (var line in _logs.GetValueOrDefault(failed.Digest) ?? []) _writer.WriteLine(line);
                _writer.WriteLine("------");
            }
            _writer.Flush();
        }
        _ticker.Dispose();
    }

    public void Dispose() => _ticker.Dispose();

    private void Redraw()
    {
        lock (_gate)
        {
            if (!_done) DrawLocked();
        }
    }

    private void DrawLocked()
    {
        var now = _time.GetUtcNow();
        var elapsed = _time.GetElapsedTime(_start).TotalSeconds;
        var vertices = _trace?.Vertices ?? [];
        var finished = vertices.Count(v => v.Completed is not null);
        var lines = new List<string>
        {
            string.Create(CultureInfo.InvariantCulture, $"[+] Building {elapsed:0.0}s ({finished}/{vertices.Count}){(_done ? " FINISHED" : "")}"),
        };
        foreach (var v in vertices)
        {
            if (v.Name.Length == 0) continue;
            var prefix = v.Cached ? " => CACHED " : v.Error.Length > 0 ? " => ERROR " : " => ";
            var seconds = v.Started is { } s ? ((v.Completed ?? now) - s).TotalSeconds : 0;
            var time = v.Started is null || v.Cached ? "" : string.Create(CultureInfo.InvariantCulture, $"{Math.Max(0, seconds):0.0}s");
            lines.Add(prefix + v.Name + (time.Length > 0 ? "  " + time : ""));
            if (v.IsRunning && _logs.GetValueOrDefault(v.Digest) is { Count: > 0 } log)
                foreach (var l in log.TakeLast(3)) lines.Add(" => => # " + l);
        }
        if (lines.Count > _height) lines = [lines[0], .. lines.Skip(lines.Count - (_height - 1))];

        var text = new StringBuilder();
        if (_drawnLines > 0) text.Append(CultureInfo.InvariantCulture, $"\x1b[{_drawnLines}A");
        foreach (var line in lines) text.Append("\r\x1b[2K").Append(line).Append('\n');
        // Lines left over from a taller previous view.
        for (var i = lines.Count; i < _drawnLines; i++) text.Append("\r\x1b[2K\n");
        var drawn = Math.Max(lines.Count, _drawnLines);
        if (drawn > lines.Count) text.Append(CultureInfo.InvariantCulture, $"\x1b[{drawn - lines.Count}A");
        _drawnLines = lines.Count;
        _writer.Write(text.ToString());
        _writer.Flush();
    }
}
