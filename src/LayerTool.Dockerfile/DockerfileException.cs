namespace LayerTool.Dockerfile;

/// <summary>
/// A Dockerfile the user must fix: carries the file, the 1-based line and column, and a message saying what
/// was expected. <see cref="Exception.Message"/> is <c>file:line:col: detail</c>.
/// </summary>
public sealed class DockerfileException : Exception
{
    public DockerfileException(string fileName, int line, int column, string detail, Exception? innerException = null)
        : base($"{fileName}:{line}:{column}: {detail}", innerException)
    {
        FileName = fileName;
        Line = line;
        Column = column;
        Detail = detail;
    }

    public DockerfileException()
        : this("Dockerfile", 1, 1, "invalid Dockerfile")
    {
    }

    public DockerfileException(string message)
        : this("Dockerfile", 1, 1, message)
    {
    }

    public DockerfileException(string message, Exception innerException)
        : this("Dockerfile", 1, 1, message, innerException)
    {
    }

    public string FileName { get; }

    public int Line { get; }

    public int Column { get; }

    /// <summary>The message without the location prefix.</summary>
    public string Detail { get; }

    public SourcePosition Position => new(Line, Column);
}
