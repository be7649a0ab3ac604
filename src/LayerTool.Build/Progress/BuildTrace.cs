namespace LayerTool.Build.Progress;

/// <summary>A vertex as merged from every increment so far.</summary>
public sealed class TracedVertex(string digest, int index)
{
    public string Digest { get; } = digest;

    /// <summary>The number docker prints (<c>#5</c>): vertices are numbered in the order they first appear.</summary>
    public int Index { get; } = index;

    public string Name { get; internal set; } = "";

    public bool Cached { get; internal set; }

    public DateTimeOffset? Started { get; internal set; }

    public DateTimeOffset? Completed { get; internal set; }

    public string Error { get; internal set; } = "";

    /// <summary>Sub-tasks by ID, in the order they first appeared.</summary>
    public List<VertexStatusUpdate> Statuses { get; } = [];

    /// <summary>A Dockerfile step (<c>[2/3] RUN ...</c>), not an internal vertex or the export.</summary>
    public bool IsStep => Name.StartsWith('[') && !Name.StartsWith("[internal]", StringComparison.Ordinal);

    public bool IsRunning => Started is not null && Completed is null;
}

/// <summary>
/// The BuildKit trace merged by vertex digest: each <see cref="StatusUpdate"/> only carries what changed, so a
/// vertex's name, start, end, cache hit and error are kept from earlier increments.
/// </summary>
public sealed class BuildTrace
{
    private readonly Dictionary<string, TracedVertex> _byDigest = new(StringComparer.Ordinal);
    private readonly List<TracedVertex> _ordered = [];

    public IReadOnlyList<TracedVertex> Vertices => _ordered;

    public TracedVertex? Find(string digest) => _byDigest.GetValueOrDefault(digest);

    /// <summary>Merges one increment; returns the vertices it touched, in order of first touch.</summary>
    public IReadOnlyList<TracedVertex> Apply(StatusUpdate update)
    {
        ArgumentNullException.ThrowIfNull(update);
        var touched = new List<TracedVertex>();
        void Touch(TracedVertex v)
        {
            if (!touched.Contains(v)) touched.Add(v);
        }
        foreach (var u in update.Vertexes)
        {
            var v = GetOrAdd(u.Digest);
            if (u.Name.Length > 0) v.Name = u.Name;
            v.Cached = u.Cached;
            if (u.Started is not null) v.Started = u.Started;
            if (u.Completed is not null) v.Completed = u.Completed;
            if (u.Error.Length > 0) v.Error = u.Error;
            Touch(v);
        }
        foreach (var s in update.Statuses)
        {
            var v = GetOrAdd(s.Vertex);
            var at = v.Statuses.FindIndex(x => x.Id == s.Id);
            if (at >= 0) v.Statuses[at] = s;
            else v.Statuses.Add(s);
            Touch(v);
        }
        foreach (var l in update.Logs) Touch(GetOrAdd(l.Vertex));
        return touched;
    }

    /// <summary>Dockerfile steps seen, and how many came from the cache.</summary>
    public (int Steps, int Cached) StepCounts() => (_ordered.Count(v => v.IsStep), _ordered.Count(v => v.IsStep && v.Cached));

    /// <summary>The first vertex that failed, if any.</summary>
    public TracedVertex? FirstError => _ordered.FirstOrDefault(v => v.Error.Length > 0 && !IsCancellation(v.Error));

    public static bool IsCancellation(string error) => error.EndsWith("context canceled", StringComparison.Ordinal);

    private TracedVertex GetOrAdd(string digest)
    {
        if (_byDigest.TryGetValue(digest, out var v)) return v;
        v = new TracedVertex(digest, _ordered.Count + 1);
        _byDigest[digest] = v;
        _ordered.Add(v);
        return v;
    }
}

/// <summary>Where a BuildKit build's progress goes: a renderer for people or machines.</summary>
public interface IBuildKitProgress
{
    /// <summary>One decoded trace increment, already merged into <paramref name="trace"/>.</summary>
    void OnStatus(BuildTrace trace, StatusUpdate update, IReadOnlyList<TracedVertex> touched);

    /// <summary>Text the engine sent as a <c>stream</c> message.</summary>
    void OnStream(string text);

    /// <summary>The built image's ID.</summary>
    void OnImageId(string imageId);

    /// <summary>The build ended (successfully or not): finish the display.</summary>
    void Complete();
}

/// <summary>Prints nothing (<c>-q</c>, <c>--progress quiet</c>).</summary>
public sealed class QuietProgress : IBuildKitProgress
{
    public void OnStatus(BuildTrace trace, StatusUpdate update, IReadOnlyList<TracedVertex> touched) { }

    public void OnStream(string text) { }

    public void OnImageId(string imageId) { }

    public void Complete() { }
}
