namespace LayerTool.Dockerfile;

/// <summary>How bad a <see cref="Diagnostic"/> is.</summary>
public enum DiagnosticSeverity
{
    Warning,
    Error,
}

/// <summary>
/// One finding about a Dockerfile: an error (the file cannot be built) or a warning (it can, but probably
/// not as intended). Rendered as <c>file:line:col: severity: message</c>.
/// </summary>
public sealed record Diagnostic(DiagnosticSeverity Severity, string FileName, SourcePosition Position, string Message)
{
    public bool IsError => Severity == DiagnosticSeverity.Error;

    public static Diagnostic Error(string fileName, SourcePosition position, string message) =>
        new(DiagnosticSeverity.Error, fileName, position, message);

    public static Diagnostic Warning(string fileName, SourcePosition position, string message) =>
        new(DiagnosticSeverity.Warning, fileName, position, message);

    /// <summary>The exception a strict caller throws for this diagnostic.</summary>
    public DockerfileException ToException() => new(FileName, Position.Line, Position.Column, Message);

    public override string ToString() =>
        $"{FileName}:{Position.Line}:{Position.Column}: {(IsError ? "error" : "warning")}: {Message}";
}
