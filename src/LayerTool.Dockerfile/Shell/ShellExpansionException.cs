namespace LayerTool.Dockerfile.Shell;

/// <summary>
/// A word that cannot be expanded (unbalanced quote, bad <c>${}</c>, a required variable unset).
/// The message reads like Docker's: <c>failed to process "${X:?}": X: is not allowed to be unset</c>.
/// </summary>
public sealed class ShellExpansionException : Exception
{
    public ShellExpansionException(string word, string reason)
        : base($"failed to process {Quote(word)}: {reason}")
    {
        Word = word;
        Reason = reason;
    }

    public ShellExpansionException()
        : this(string.Empty, "invalid word")
    {
    }

    public ShellExpansionException(string message)
        : this(string.Empty, message)
    {
    }

    public ShellExpansionException(string message, Exception innerException)
        : base(message, innerException)
    {
        Word = string.Empty;
        Reason = message;
    }

    /// <summary>The word being expanded.</summary>
    public string Word { get; }

    /// <summary>What went wrong, without the word.</summary>
    public string Reason { get; }

    /// <summary>The word as shown in the message: quoted, and cut after 200 characters (a hostile word can be megabytes long).</summary>
    private static string Quote(string s) =>
        s.Length > 200 ? QuoteWhole(s[..200]) + "…" : QuoteWhole(s);

    private static string QuoteWhole(string s) =>
        "\"" + s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
}
