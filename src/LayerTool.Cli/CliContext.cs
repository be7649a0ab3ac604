namespace LayerTool.Cli;

/// <summary>
/// Where a command reads and writes: the console in production, string writers in tests. Commands never
/// touch <see cref="Console"/> directly.
/// </summary>
/// <param name="Out">Standard output: the command's result.</param>
/// <param name="Error">Standard error: errors, warnings, progress.</param>
/// <param name="Input">Opens standard input (for <c>-f -</c>).</param>
/// <param name="WorkingDirectory">Relative paths are resolved against it.</param>
public sealed record CliContext(TextWriter Out, TextWriter Error, Func<TextReader> Input, string WorkingDirectory)
{
    /// <summary>Where runs keep their temp directories: what the sweep of leftovers of killed runs looks through.</summary>
    public string TempRoot { get; init; } = Path.GetTempPath();

    /// <summary>This run's own temp directory (deleted when the process ends); null: the system's temp directory.</summary>
    public string? TempDirectory { get; init; }

    /// <summary>The process console and current directory.</summary>
    public static CliContext FromConsole() =>
        new(Console.Out, Console.Error, () => Console.In, Environment.CurrentDirectory);
}
