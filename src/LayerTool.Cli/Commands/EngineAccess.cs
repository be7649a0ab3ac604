using System.Globalization;
using LayerTool.Build.Squash;
using LayerTool.Docker;

namespace LayerTool.Cli.Commands;

/// <summary>The engine and the user's cache as the image verbs use them.</summary>
internal static class EngineAccess
{
    /// <summary>Connects to the engine DOCKER_HOST / the docker context names (resolved by the client like the docker CLI).</summary>
    public static Task<DockerConnection> ConnectAsync(CancellationToken cancellationToken) =>
        DockerConnection.ConnectAsync(new EngineSettings(), cancellationToken);

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
