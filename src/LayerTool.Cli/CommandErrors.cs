using LayerTool.Dockerfile;
using LayerTool.Docker;

namespace LayerTool.Cli;

/// <summary>A failure the CLI itself detects (an unreadable file, a bad value): printed, exit 1.</summary>
public sealed class CliException : Exception
{
    public CliException()
    {
    }

    public CliException(string message)
        : base(message)
    {
    }

    public CliException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// The one error-handling policy of every verb: exceptions a user can fix print <c>layertool: message</c> on
/// stderr and exit 1; cancellation exits 130 (Ctrl-C; 143 for SIGTERM, see <see cref="LayerToolApp.Run"/>); anything else is reported in one line (no stack
/// trace) and exits 1. Usage errors (exit 2) are handled before a verb runs, in <see cref="LayerToolApp"/>.
/// </summary>
public static class CommandErrors
{
    public const int Success = 0;
    public const int Failure = 1;
    public const int Usage = 2;
    /// <summary>Cancelled: Ctrl-C (SIGINT) or the caller's token; 128 + SIGINT.</summary>
    public const int Cancelled = 130;

    /// <summary>Cancelled by SIGTERM (128 + SIGTERM); set by <see cref="LayerToolApp.Run"/>, which knows the signal.</summary>
    public const int Terminated = 143;

    /// <summary>
    /// Exception types whose message is meant for the user. Add the other projects' types here
    /// (<c>ImageFormatException</c>, <c>BuildException</c>, <c>EngineException</c>) as they appear.
    /// </summary>
    public static IReadOnlyList<Type> UserErrors { get; } =
    [
        typeof(DockerfileException),
        typeof(CliException),
        typeof(LayerTool.Build.BuildException),
        typeof(LayerTool.Docker.EngineException),
        typeof(LayerTool.Image.ImageFormatException),
        typeof(UnauthorizedAccessException),
        typeof(IOException),
        typeof(LayerTool.Image.Squash.SquashVerificationException),
        typeof(LayerTool.Registry.RegistryException),
        typeof(LayerTool.Build.Plans.PlanException),
    ];

    public static bool IsUserError(Exception e) =>
        e is not null && UserErrors.Any(t => t.IsInstanceOfType(e));

    /// <summary>Runs one verb's work with the policy above.</summary>
    public static async Task<int> RunAsync(CliContext context, Func<CancellationToken, Task<int>> work, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(work);
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            return await work(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception) when (cancellationToken.IsCancellationRequested)
        {
            // Cancelled, whatever the exception: a cancelled read can surface as the stream's own error (a closed
            // pipe, a connection cut short), which would read as a failure of its own.
            await context.Error.WriteLineAsync("layertool: cancelled").ConfigureAwait(false);
            return Cancelled;
        }
        catch (Exception e) when (IsUserError(e))
        {
            await context.Error.WriteLineAsync($"layertool: {e.Message}").ConfigureAwait(false);
            return Failure;
        }
#pragma warning disable CA1031 // The last line of defence: report any other failure without a stack trace.
        catch (Exception e)
#pragma warning restore CA1031
        {
            await context.Error.WriteLineAsync($"layertool: unexpected error ({e.GetType().Name}): {e.Message}").ConfigureAwait(false);
            return Failure;
        }
    }
}
