using LayerTool.Docker.Dind;

namespace LayerTool.Docker.Plans;

/// <summary>One engine a plan run may build on.</summary>
/// <param name="Name">For people: <c>local</c>, the <c>--engine</c> value, <c>dind-2</c>.</param>
/// <param name="Settings">How to reach it; null for a dind engine (started by the pool).</param>
public sealed record PlanEngineSpec(string Name, EngineSettings? Settings)
{
    /// <summary>
    /// An <c>--engine</c> value: a <c>DOCKER_HOST</c> URL (<c>unix:///run/x.sock</c>, <c>tcp://host:2375</c>) when it has
    /// a scheme, else a docker context name.
    /// </summary>
    public static PlanEngineSpec Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (value.Contains("://", StringComparison.Ordinal))
        {
            if (!Uri.TryCreate(value, UriKind.Absolute, out var uri)) throw new EngineException($"--engine {value}: not a URL");
            return new PlanEngineSpec(value, new EngineSettings(uri));
        }
        if (value.Length == 0) throw new EngineException("--engine: empty engine name");
        return new PlanEngineSpec(value, new EngineSettings(Context: value));
    }
}

/// <summary>
/// The engines of one plan run, by index: engines given by URL or docker context (connected on first use), and
/// throw-away dind engines started on the home engine on first use (the seed's elastic build containers) and
/// released when the pool is disposed: also after a failure or Ctrl-C. The home engine is the one the results
/// end up in (the local engine, <c>DOCKER_HOST</c>).
/// </summary>
public sealed class PlanEnginePool : IAsyncDisposable
{
    private readonly DockerConnection _home;
    private readonly IReadOnlyList<PlanEngineSpec> _specs;
    private readonly DindOptions? _dind;
    private readonly IProgress<string>? _log;
    private readonly DockerConnection?[] _connections;
    private readonly DindSession?[] _sessions;
    private readonly SemaphoreSlim[] _starting;
    private readonly Lock _gate = new();
    private bool _disposed;

    private PlanEnginePool(DockerConnection home, IReadOnlyList<PlanEngineSpec> specs, DindOptions? dind, IProgress<string>? log)
    {
        _home = home;
        _specs = specs;
        _dind = dind;
        _log = log;
        _connections = new DockerConnection?[specs.Count];
        _sessions = new DindSession?[specs.Count];
        _starting = [.. specs.Select(_ => new SemaphoreSlim(1, 1))];
    }

    /// <summary>
    /// The pool: the home engine alone when neither <paramref name="engines"/> nor <paramref name="dindCount"/> is
    /// given; else the engines named, then <paramref name="dindCount"/> dind engines.
    /// </summary>
    public static PlanEnginePool Create(DockerConnection home, IReadOnlyList<string> engines, int dindCount, DindOptions? dind, IProgress<string>? log)
    {
        ArgumentNullException.ThrowIfNull(home);
        ArgumentNullException.ThrowIfNull(engines);
        ArgumentOutOfRangeException.ThrowIfNegative(dindCount);
        if (dindCount > 0 && dind is null) throw new ArgumentException("dind engines need dind options", nameof(dind));
        var specs = new List<PlanEngineSpec>();
        if (engines.Count == 0 && dindCount == 0) specs.Add(new PlanEngineSpec("local", null));
        specs.AddRange(engines.Select(PlanEngineSpec.Parse));
        for (var i = 1; i <= dindCount; i++) specs.Add(new PlanEngineSpec($"dind-{i}", null));
        var pool = new PlanEnginePool(home, specs, dind, log);
        if (engines.Count == 0 && dindCount == 0) pool._connections[0] = home;
        return pool;
    }

    public int Count => _specs.Count;

    public DockerConnection Home => _home;

    public IReadOnlyList<string> Names => [.. _specs.Select(s => s.Name)];

    /// <summary>True for a throw-away dind engine (what is built there must be brought out).</summary>
    public bool IsDind(int engine) => _specs[engine].Settings is null && !ReferenceEquals(_connections[engine], _home);

    /// <summary>True when the engine is the home engine itself.</summary>
    public bool IsHome(int engine) => ReferenceEquals(_connections[engine], _home)
        || (_specs[engine].Settings?.Endpoint is { } endpoint && _home.Client.Options.Endpoint is { } home && Uri.Compare(endpoint, home, UriComponents.AbsoluteUri, UriFormat.Unescaped, StringComparison.Ordinal) == 0);

    /// <summary>The engine, connected (or its dind container started) on first use.</summary>
    public async Task<DockerConnection> GetAsync(int engine, CancellationToken cancellationToken)
    {
        if (_connections[engine] is { } ready) return ready;
        await _starting[engine].WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_connections[engine] is { } connected) return connected;
            lock (_gate) ObjectDisposedException.ThrowIf(_disposed, this);
            var spec = _specs[engine];
            if (spec.Settings is { } settings)
            {
                if (IsHome(engine)) return _connections[engine] = _home;
                var connection = await DockerConnection.ConnectAsync(settings, cancellationToken).ConfigureAwait(false);
                _connections[engine] = connection;
                return connection;
            }
            _log?.Report($"{spec.Name}: starting a dind engine");
            var session = await DindSession.StartAsync(_home, _dind!, _log, cancellationToken).ConfigureAwait(false);
            _sessions[engine] = session;
            _connections[engine] = session.Inner;
            return session.Inner;
        }
        finally
        {
            _starting[engine].Release();
        }
    }

    /// <summary>
    /// Closes the connections and releases every dind container, side by side; never throws. An engine still being
    /// connected or started is waited for first (a cancelled run's starts end at once, cleaning up after themselves).
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
        }
        foreach (var s in _starting) await s.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        var sessions = _sessions.OfType<DindSession>().ToList();
        var connections = _connections.OfType<DockerConnection>().Where(c => !ReferenceEquals(c, _home) && !sessions.Any(s => ReferenceEquals(s.Inner, c))).ToList();
        foreach (var c in connections) c.Dispose();
        await Task.WhenAll(sessions.Select(s => s.DisposeAsync().AsTask())).ConfigureAwait(false);
        foreach (var s in _starting) s.Dispose();
    }
}
