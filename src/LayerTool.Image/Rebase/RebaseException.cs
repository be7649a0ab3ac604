namespace LayerTool.Image.Rebase;

/// <summary>
/// A rebase that cannot be done as asked: an old base that is not a prefix of the image's layers, no old
/// base to be found, a <c>--take-base-config</c> key that does not exist. The message says what to change.
/// (An <see cref="ImageFormatException"/>, so every caller that reports those to the user reports this too.)
/// </summary>
public sealed class RebaseException : ImageFormatException
{
    public RebaseException()
    {
    }

    public RebaseException(string message)
        : base(message)
    {
    }

    public RebaseException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
