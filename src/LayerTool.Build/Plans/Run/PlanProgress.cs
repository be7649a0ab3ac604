using System.Globalization;
using System.Text;
using System.Text.Json;

namespace LayerTool.Build.Plans.Run;

/// <summary>How a plan run shows its progress.</summary>
public enum PlanProgressStyle
{
    /// <summary>One live line per image, rewritten in place (a terminal).</summary>
    Tty,

    /// <summary>One line per state change.</summary>
    Plain,

    /// <summary>One JSON object per state change.</summary>
    Json,
}

/// <summary>
/// Renders a plan run: on a terminal one line per image (state, engine, time), redrawn in place as states change and
/// twice a second while something runs; otherwise one line (plain) or one JSON object (json) per state change. Then the
/// summary: built, up to date, failed (with the first line of each error) and not started (with why).
/// </summary>
public sealed class PlanProgress : IProgress<PlanEvent>, IDisposable
{
    private readonly TextWriter _writer;
    private readonly PlanProgressStyle _style;
    private readonly IReadOnlyList<string> _images;
    private readonly IReadOnlyList<string> _engines;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, PlanEvent> _latest = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DateTimeOffset> _started = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private readonly int _width;
    private ITimer? _timer;
    private bool _drawn;

    /// <param name="writer">Where to write.</param>
    /// <param name="style">How.</param>
    /// <param name="images">The images, in the order their lines appear.</param>
    /// <param name="engines">The engines' names, by pool index.</param>
    /// <param name="time">The clock (tests pass their own); null: the system's.</param>
    public PlanProgress(TextWriter writer, PlanProgressStyle style, IReadOnlyList<string> images, IReadOnlyList<string> engines, TimeProvider? time = null)
    {
        _writer = writer ?? throw new ArgumentNullException(nameof(writer));
        _style = style;
        _images = images ?? throw new ArgumentNullException(nameof(images));
        _engines = engines ?? throw new ArgumentNullException(nameof(engines));
        _time = time ?? TimeProvider.System;
        _width = Math.Max(8, images.Count == 0 ? 0 : images.Max(i => i.Length));
        if (style == PlanProgressStyle.Tty)
        {
            lock (_gate) Draw();
            _timer = _time.CreateTimer(_ => { lock (_gate) Draw(); }, null, TimeSpan.FromMilliseconds(500), TimeSpan.FromMilliseconds(500));
        }
    }

    public void Report(PlanEvent value)
    {
        ArgumentNullException.ThrowIfNull(value);
        lock (_gate)
        {
            _latest[value.Name] = value;
            if (value.State == PlanImageState.Running) _started[value.Name] = _time.GetUtcNow();
            switch (_style)
            {
                case PlanProgressStyle.Tty:
                    Draw();
                    break;
                case PlanProgressStyle.Plain:
                    _writer.WriteLine(PlainLine(value));
                    _writer.Flush();
                    break;
                default:
                    _writer.WriteLine(JsonLine(value));
                    _writer.Flush();
                    break;
            }
        }
    }

    /// <summary>The name of an engine by pool index.</summary>
    public string EngineName(int? engine) => engine is { } e && e >= 0 && e < _engines.Count ? _engines[e] : "";

    private string PlainLine(PlanEvent e)
    {
        var text = new StringBuilder();
        text.Append(e.Name).Append(": ").Append(StateText(e.State));
        if (e.Engine is not null && e.State is PlanImageState.Running or PlanImageState.Built or PlanImageState.Failed)
            text.Append(" on ").Append(EngineName(e.Engine));
        if (e.State is not PlanImageState.Running and not PlanImageState.Waiting and not PlanImageState.NotStarted)
            text.Append(" in ").Append(Seconds(e.Elapsed));
        if (e.Message is { Length: > 0 } m) text.Append(e.State == PlanImageState.Failed ? ": " : " (").Append(m).Append(e.State == PlanImageState.Failed ? "" : ")");
        return text.ToString();
    }

    private string JsonLine(PlanEvent e)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("image", e.Name);
            json.WriteString("state", StateText(e.State));
            if (e.Engine is not null) json.WriteString("engine", EngineName(e.Engine));
            json.WriteNumber("seconds", Math.Round(e.Elapsed.TotalSeconds, 3));
            if (e.Message is not null) json.WriteString("message", e.Message);
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private void Draw()
    {
        if (_images.Count == 0) return;
        var text = new StringBuilder();
        if (_drawn) text.Append("\x1b[").Append(_images.Count.ToString(CultureInfo.InvariantCulture)).Append('A');
        var now = _time.GetUtcNow();
        foreach (var image in _images)
        {
            text.Append("\r\x1b[K");
            var e = _latest.GetValueOrDefault(image);
            var state = e?.State ?? PlanImageState.Waiting;
            var elapsed = state == PlanImageState.Running && _started.TryGetValue(image, out var s) ? now - s : e?.Elapsed ?? TimeSpan.Zero;
            text.Append(image.PadRight(_width)).Append("  ").Append(StateText(state).PadRight(11)).Append(' ')
                .Append(EngineName(e?.Engine).PadRight(12)).Append(' ');
            if (state is not PlanImageState.Waiting and not PlanImageState.NotStarted) text.Append(Seconds(elapsed).PadLeft(7));
            if (e?.Message is { Length: > 0 } m && state is PlanImageState.Failed or PlanImageState.NotStarted) text.Append("  ").Append(m);
            text.Append('\n');
        }
        _writer.Write(text.ToString());
        _writer.Flush();
        _drawn = true;
    }

    /// <summary>The word for a state, as every style prints it.</summary>
    public static string StateText(PlanImageState state) => state switch
    {
        PlanImageState.Waiting => "waiting",
        PlanImageState.Running => "running",
        PlanImageState.Built => "built",
        PlanImageState.UpToDate => "up to date",
        PlanImageState.Failed => "failed",
        _ => "not started",
    };

    private static string Seconds(TimeSpan t) => t.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + "s";

    /// <summary>The summary after the run: counts, then a line for every image that failed or did not start.</summary>
    public static string Summary(PlanRunSummary summary, IReadOnlyList<string> engines)
    {
        ArgumentNullException.ThrowIfNull(summary);
        ArgumentNullException.ThrowIfNull(engines);
        var text = new StringBuilder();
        int Count(PlanImageState s) => summary.Results.Count(r => r.State == s);
        text.Append(CultureInfo.InvariantCulture,
            $"plan: {Count(PlanImageState.Built)} built, {Count(PlanImageState.UpToDate)} up to date, {Count(PlanImageState.Failed)} failed, {Count(PlanImageState.NotStarted)} not started in {Seconds(summary.Elapsed)}{(summary.Cancelled ? " (cancelled)" : "")}\n");
        foreach (var group in new[] { PlanImageState.Built, PlanImageState.UpToDate, PlanImageState.Failed, PlanImageState.NotStarted })
        {
            var results = summary.Results.Where(r => r.State == group).ToList();
            if (results.Count == 0) continue;
            text.Append("  ").Append(StateText(group)).Append(":\n");
            foreach (var r in results)
            {
                text.Append("    ").Append(r.Name);
                if (group == PlanImageState.Built && r.Engine is { } e && e < engines.Count)
                    text.Append(CultureInfo.InvariantCulture, $" ({Seconds(r.Elapsed)} on {engines[e]})");
                if (r.Output is { } o && group is PlanImageState.Built or PlanImageState.UpToDate)
                    text.Append(' ').Append(BuildLog.ShortId(o.ImageId));
                if (r.Message is { Length: > 0 } m && group is PlanImageState.Failed or PlanImageState.NotStarted)
                    text.Append(": ").Append(m);
                text.Append('\n');
            }
        }
        return text.ToString();
    }

    /// <summary>The summary as one JSON object.</summary>
    public static string SummaryJson(PlanRunSummary summary, IReadOnlyList<string> engines)
    {
        ArgumentNullException.ThrowIfNull(summary);
        ArgumentNullException.ThrowIfNull(engines);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("summary", summary.Succeeded ? "ok" : summary.Cancelled ? "cancelled" : "failed");
            json.WriteNumber("seconds", Math.Round(summary.Elapsed.TotalSeconds, 3));
            json.WriteStartArray("images");
            foreach (var r in summary.Results)
            {
                json.WriteStartObject();
                json.WriteString("image", r.Name);
                json.WriteString("state", StateText(r.State));
                if (r.Engine is { } e && e < engines.Count) json.WriteString("engine", engines[e]);
                json.WriteNumber("seconds", Math.Round(r.Elapsed.TotalSeconds, 3));
                if (r.Output is { } o) json.WriteString("id", o.ImageId);
                if (r.Message is not null) json.WriteString("message", r.Message);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _timer?.Dispose();
            _timer = null;
            if (_style == PlanProgressStyle.Tty) Draw();
        }
    }
}
