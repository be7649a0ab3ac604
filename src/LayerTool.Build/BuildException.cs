namespace LayerTool.Build;

/// <summary>
/// A build failed for a reason the user can act on: a failing RUN, a missing file, a bad instruction.
/// The message starts with <c>file:line:</c> when an instruction is to blame.
/// </summary>
public sealed class BuildException : Exception
{
    public BuildException(string message) : base(message) { }

    public BuildException(string message, Exception inner) : base(message, inner) { }

    public BuildException() { }
}
