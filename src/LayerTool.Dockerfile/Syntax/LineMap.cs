namespace LayerTool.Dockerfile.Syntax;

/// <summary>Maps offsets in a logical (joined) line back to source lines and columns.</summary>
internal sealed class LineMap
{
    private readonly List<(int Offset, int Line, int Column)> _segments = [];

    public void Add(int offset, int line, int column) => _segments.Add((offset, line, column));

    public SourcePosition At(int offset)
    {
        var seg = _segments[0];
        foreach (var s in _segments)
        {
            if (s.Offset > offset)
                break;
            seg = s;
        }

        return new SourcePosition(seg.Line, seg.Column + Math.Max(0, offset - seg.Offset));
    }
}
