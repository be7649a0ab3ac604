namespace LayerTool.Registry;

/// <summary>
/// A registry operation that failed in a way a user can act on: an unknown tag, refused credentials, a
/// registry that cannot be reached, a blob whose bytes do not match its digest. The message names the
/// registry, the repository and what was being done; the inner exception is kept.
/// </summary>
public class RegistryException : Exception
{
    public RegistryException()
    {
    }

    public RegistryException(string message)
        : base(message)
    {
    }

    public RegistryException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The HTTP status the registry answered, when the failure was an answer.</summary>
    public int? StatusCode { get; init; }

    /// <summary>The first error code of the registry's error body (e.g. <c>MANIFEST_UNKNOWN</c>).</summary>
    public string? ErrorCode { get; init; }
}
