namespace LayerTool.Build.Plans;

/// <summary>
/// A plan file the user must fix (an unknown key, a cycle, a missing context, ...), or a plan that cannot be
/// exported. <see cref="Exception.Message"/> is <c>file:line: detail</c> when a place in the plan file is to
/// blame, else the detail alone.
/// </summary>
public sealed class PlanException : Exception
{
    public PlanException(PlanLocation? location, string detail, Exception? innerException = null)
        : base(location is { } at ? $"{at}: {detail}" : detail, innerException)
    {
        Location = location;
        Detail = detail;
    }

    public PlanException()
        : this(null, "invalid plan")
    {
    }

    public PlanException(string message)
        : this(null, message)
    {
    }

    public PlanException(string message, Exception innerException)
        : this(null, message, innerException)
    {
    }

    /// <summary>Where in the plan file; null when no single place is to blame.</summary>
    public PlanLocation? Location { get; }

    /// <summary>The message without the location prefix.</summary>
    public string Detail { get; }
}
