namespace LayerTool.Cli;

/// <summary>Reads the Dockerfile named by <c>-f</c>: a path, or <c>-</c> for standard input.</summary>
public static class DockerfileInput
{
    public const string DefaultFile = "Dockerfile";

    /// <summary>The text and the name to show in messages.</summary>
    public static async Task<(string Text, string DisplayName)> ReadAsync(string file, CliContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(context);
        if (file == "-")
        {
            var text = await context.Input().ReadToEndAsync(cancellationToken).ConfigureAwait(false);
            return (text, "<stdin>");
        }

        var path = Path.GetFullPath(file, context.WorkingDirectory);
        try
        {
            var bytes = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
            // Decode without dropping a byte-order mark: the parser strips it like Docker does.
            return (new System.Text.UTF8Encoding(false).GetString(bytes), file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            var why = e is FileNotFoundException or DirectoryNotFoundException ? "no such file" : e.Message;
            throw new CliException($"cannot read {file}: {why}", e);
        }
    }
}
