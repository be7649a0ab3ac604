namespace LayerTool.Cli.Commands;

/// <summary>The command line asks for something impossible: exit code 2.</summary>
public sealed class UsageException : Exception
{
    public UsageException(string message) : base(message) { }

    public UsageException(string message, Exception inner) : base(message, inner) { }

    public UsageException() { }
}
