namespace LayerTool.Dockerfile.Syntax;

/// <summary>A malformed instruction line; <see cref="Position"/> is where, when known.</summary>
internal sealed class LineSyntaxException(string message, SourcePosition? position) : Exception(message)
{
    public SourcePosition? Position { get; } = position;
}
