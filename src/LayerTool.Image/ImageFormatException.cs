namespace LayerTool.Image;

/// <summary>
/// An image, archive, layer or reference that does not follow its format: a corrupt or truncated
/// archive, a missing member, a digest that does not match the bytes, an invalid reference. The message
/// says what is wrong and where; a user can act on it.
/// </summary>
public class ImageFormatException : Exception
{
    public ImageFormatException()
    {
    }

    public ImageFormatException(string message)
        : base(message)
    {
    }

    public ImageFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
