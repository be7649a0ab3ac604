using System.Globalization;
using LayerTool.Docker.Squash;
using LayerTool.Docker;
using LayerTool.Docker.Sweep;

namespace LayerTool.Cli.Commands;

/// <summary>The engine and the user's cache as the image verbs use them.</summary>
internal static class EngineAccess
{
    /// <summary>
    /// Connects to the engine DOCKER_HOST / the docker context names (resolved by the client like the docker CLI),
    /// and first sweeps what killed LayerTool processes left in it and in the temp directory (<see cref="SweepAsync"/>).
    /// </summary>
    public static async Task<DockerConnection> ConnectAsync(CliContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var connection = await DockerConnection.ConnectAsync(new EngineSettings(), cancellationToken).ConfigureAwait(false);
        try
        {
            await SweepAsync(context, connection, cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Removes the containers and temp directories of LayerTool processes that no longer exist (Sweep/Sweeper): one
    /// container list, a directory listing. Never fails the run: what it cannot do is a warning on stderr.
    /// </summary>
    public static async Task SweepAsync(CliContext context, DockerConnection? connection, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var report = await Sweeper.SweepAsync(connection, context.TempRoot, cancellationToken).ConfigureAwait(false);
        foreach (var warning in report.Warnings)
            await context.Error.WriteLineAsync($"layertool: warning: {warning}").ConfigureAwait(false);
    }

    /// <summary><c>$XDG_CACHE_HOME/layertool/index</c>, else <c>~/.cache/layertool/index</c>.</summary>
    public static string DefaultIndexCache(Func<string, string?> environment)
    {
        var root = environment("XDG_CACHE_HOME");
        if (string.IsNullOrWhiteSpace(root))
        {
            var home = environment("HOME");
            root = Path.Combine(string.IsNullOrWhiteSpace(home) ? Path.GetTempPath() : home, ".cache");
        }
        return Path.Combine(root, "layertool", "index");
    }

    /// <summary>Progress lines on stderr, only when stderr is the process's terminal.</summary>
    public static TerminalProgress? Progress(CliContext context) =>
        ReferenceEquals(context.Error, Console.Error) && !Console.IsErrorRedirected ? new TerminalProgress(context.Error) : null;
}

/// <summary>One status line on a terminal, rewritten in place (at most ten times a second).</summary>
internal sealed class TerminalProgress(TextWriter error) : IProgress<SquashProgress>
{
    private readonly Lock _gate = new();
    private long _lastTicks;
    private bool _shown;

    public void Report(SquashProgress value)
    {
        lock (_gate)
        {
            var now = Environment.TickCount64;
            if (value.Phase == "squash" && now - _lastTicks < 100) return;
            _lastTicks = now;
            var text = value.Phase == "squash"
                ? string.Create(CultureInfo.InvariantCulture, $"squash: {Units.Bytes(value.Bytes)}{(value.TotalBytes is { } t ? " of " + Units.Bytes(t) : "")} read")
                : value.Phase + "...";
            error.Write("\r\x1b[K" + text);
            _shown = true;
        }
    }

    public void Done()
    {
        lock (_gate)
        {
            if (_shown) error.Write("\r\x1b[K");
            _shown = false;
        }
    }
}

/// <summary>Human byte counts.</summary>
internal static class Units
{
    public static string Bytes(long bytes) => bytes switch
    {
        >= 1_000_000_000 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e9:0.00} GB"),
        >= 1_000_000 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e6:0.0} MB"),
        >= 1_000 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e3:0.0} kB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes} B"),
    };
}
