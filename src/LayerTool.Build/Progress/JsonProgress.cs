namespace LayerTool.Build.Progress;

/// <summary>
/// <c>--progress json</c> for BuildKit builds: what the classic path's JSON mode emits, one object per line:
/// <c>{"stream":"..."}</c> for each line of the plain output and <c>{"aux":{"ID":"sha256:..."}}</c> for the image.
/// </summary>
public sealed class JsonProgress : IBuildKitProgress, IDisposable
{
    private readonly BuildLog _log;
    private readonly PlainProgress _plain;
    private readonly LineWriter _lines;

    public JsonProgress(TextWriter writer)
    {
        _log = new BuildLog(writer, ProgressMode.Json, quiet: false);
        _lines = new LineWriter(_log);
        _plain = new PlainProgress(_lines);
    }

    public void OnStatus(BuildTrace trace, StatusUpdate update, IReadOnlyList<TracedVertex> touched) => _plain.OnStatus(trace, update, touched);

    public void OnStream(string text) => _log.Write(text);

    public void OnImageId(string imageId) => _log.AuxId(imageId);

    public void Complete() => _lines.Flush();

    public void Dispose() => _lines.Dispose();

    /// <summary>Hands each complete line of the plain output to the JSON log.</summary>
    private sealed class LineWriter(BuildLog log) : TextWriter
    {
        private readonly System.Text.StringBuilder _line = new();

        public override System.Text.Encoding Encoding => System.Text.Encoding.UTF8;

        public override void Write(char value)
        {
            _line.Append(value);
            if (value != '\n') return;
            log.Write(_line.ToString());
            _line.Clear();
        }

        public override void Write(string? value)
        {
            if (value is null) return;
            foreach (var c in value) Write(c);
        }

        public override void WriteLine(string? value)
        {
            Write(value);
            Write('\n');
        }

        public override void WriteLine() => Write('\n');

        public override void Flush()
        {
            if (_line.Length == 0) return;
            log.Write(_line.ToString());
            _line.Clear();
        }
    }
}
