namespace LayerTool.Dockerfile;

/// <summary>A 1-based line and column in a Dockerfile.</summary>
public readonly record struct SourcePosition(int Line, int Column)
{
    public override string ToString() => $"{Line}:{Column}";
}

/// <summary>The 1-based, inclusive range of source lines an instruction spans (heredoc bodies included).</summary>
public readonly record struct SourceRange(int StartLine, int EndLine)
{
    public override string ToString() => StartLine == EndLine ? $"{StartLine}" : $"{StartLine}-{EndLine}";
}
