namespace LayerTool.Image;

/// <summary>
/// An image, archive or layer is malformed or uses something LayerTool refuses (a corrupt or truncated
/// tar, a path escaping the root, an unsupported entry kind). The message names the offending path or
/// offset; the inner exception, when there is one, keeps the low-level detail.
/// </summary>
public class ImageFormatException : Exception
{
    public ImageFormatException(string message) : base(message) { }

    public ImageFormatException(string message, Exception inner) : base(message, inner) { }

    public ImageFormatException() { }
}
