using System.Collections.Concurrent;
using System.Globalization;
using Docker.DotNet;
using LayerTool.Build;
using LayerTool.Build.Plans;
using LayerTool.Build.Progress;
using LayerTool.Build.Builds;
using LayerTool.Build.Dind;
using LayerTool.Docker;
using LayerTool.Build.Plans.Run;
using LayerTool.Docker.Plans;
using LayerTool.Docker.Dind;
using LayerTool.Docker.Images;
using LayerTool.Docker.Sweep;
using LayerTool.Dockerfile.Model;

namespace LayerTool.Build.Plans.Run;

/// <summary>Everything one <c>layertool plan run</c> needs besides the plan.</summary>
/// <param name="Jobs">Builds at once; null: one per engine.</param>
/// <param name="Engines"><c>--engine</c> values (URLs or docker context names).</param>
/// <param name="DindCount"><c>--dind N</c>: throw-away dind engines started on the home engine.</param>
/// <param name="Dind">How to start them (with <paramref name="DindCount"/> &gt; 0).</param>
/// <param name="Registry">The registry repository prefix parents reach children through (<c>--registry</c>, else the
/// plan's); null: image transfer.</param>
/// <param name="RegistryClient">Pushes and checks (with a registry or registry outputs); null: none.</param>
/// <param name="NoCache">Build without the builders' caches, and build every image even when up to date.</param>
/// <param name="Builder">Which builder runs each image.</param>
/// <param name="NetworkMode">Network for RUN (null: the engine's default; dind engines: host).</param>
/// <param name="BuildCacheDirectory">The classic executor's cache index.</param>
/// <param name="StateDirectory">Where the plans' run records and build logs live.</param>
/// <param name="TempDirectory">Rewritten Dockerfiles and spilled saves; null: the system's temp directory.</param>
public sealed record PlanRunOptions(
    int? Jobs,
    IReadOnlyList<string> Engines,
    int DindCount,
    DindOptions? Dind,
    string? Registry,
    IPlanRegistry? RegistryClient,
    bool NoCache,
    EngineBuilder Builder,
    string? NetworkMode,
    string? BuildCacheDirectory,
    string StateDirectory,
    string? TempDirectory);

/// <summary>Whether an image of a plan is up to date.</summary>
public enum PlanImageStatus
{
    UpToDate,
    Stale,
    Missing,
}

/// <summary>One line of <c>plan status</c>.</summary>
/// <param name="Name">The image.</param>
/// <param name="Status">Up to date, stale or missing.</param>
/// <param name="Reason">Why it is stale or missing; null when up to date.</param>
/// <param name="ImageId">The image it is (up to date), or was last built into.</param>
public sealed record PlanStatusLine(string Name, PlanImageStatus Status, string? Reason, string? ImageId);

/// <summary>
/// <c>layertool plan run</c> and <c>plan status</c> on real engines. The order and the parallelism are
/// <see cref="PlanScheduler"/>'s; each image is checked (its input hash against the label <see cref="PlanState.InputsLabel"/>
/// of its output and the run record), and when stale built with the same build path as <c>layertool build</c>
/// (<see cref="ImageBuilds"/>: TAG and COMPRESS work), on the engine the scheduler chose. Parents reach a child on
/// another engine through the registry (pushed once, pulled by digest, the child's FROM pointed at <c>repo@digest</c>) or
/// by image transfer of only the layers the engine lacks; on the same engine the child's FROM names the parent's exact
/// image through a content-named tag. Results are tagged in the home engine (and pushed, for registry outputs).
/// </summary>
public sealed class PlanRunner
{
    /// <summary>The repository of the content-named tags hand-offs use (<c>layertool-plan/NAME:ID</c>); removed at the end.</summary>
    public const string HandOffRepository = "layertool-plan";

    private readonly IReadOnlyList<PlanRunImage> _images;
    private readonly PlanFile _plan;
    private readonly PlanInputHasher _hasher;
    private readonly PlanRunOptions _options;
    private readonly IProgress<string>? _log;
    private readonly PlanState _state;
    private readonly ConcurrentDictionary<string, string> _pushed = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(int Engine, string Tag), bool> _handOffTags = new();
    private readonly ConcurrentDictionary<string, bool> _knownImages = new(StringComparer.Ordinal);
    private readonly Lock _stateGate = new();
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _pushGates = new(StringComparer.Ordinal);

    /// <param name="plan">The plan file.</param>
    /// <param name="images">Its images with their parents and references (from the plan's graph).</param>
    /// <param name="hasher">Computes an image's input hash.</param>
    /// <param name="options">How to run.</param>
    /// <param name="log">Lines about engines and hand-offs (dind starts, transfers); null: none.</param>
    public PlanRunner(PlanFile plan, IReadOnlyList<PlanRunImage> images, PlanInputHasher hasher, PlanRunOptions options, IProgress<string>? log)
    {
        _plan = plan ?? throw new ArgumentNullException(nameof(plan));
        _images = images ?? throw new ArgumentNullException(nameof(images));
        _hasher = hasher ?? throw new ArgumentNullException(nameof(hasher));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _log = log;
        _state = PlanState.Load(PlanState.PathFor(options.StateDirectory, plan.Path));
        if (RegistryPrefix is not null && options.RegistryClient is null)
            throw new ArgumentException("a registry hand-off needs a registry client", nameof(options));
    }

    /// <summary>The run record's file.</summary>
    public string StatePath => _state.Path;

    /// <summary>Where an image's build log goes.</summary>
    public string LogPath(string image) => Path.Combine(Path.ChangeExtension(_state.Path, null) + "-logs", image + ".log");

    private string? RegistryPrefix => _options.Registry ?? _plan.Registry;

    /// <summary>The registry repository of an image: its own, else <c>{registry}/{name}</c>; null without a registry.</summary>
    public string? RepositoryOf(PlanImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        return image.Repository ?? (RegistryPrefix is { } prefix ? prefix.TrimEnd('/') + "/" + image.Name : null);
    }

    /// <summary>Runs the plan; the pool's engines (dind containers included) are released before this returns or throws.</summary>
    public async Task<PlanRunSummary> RunAsync(DockerConnection home, IProgress<PlanEvent>? events, Action<IReadOnlyList<string>>? enginesReady,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(home);
        var pool = PlanEnginePool.Create(home, _options.Engines, _options.DindCount, _options.Dind, _log);
        await using (pool.ConfigureAwait(false))
        {
            enginesReady?.Invoke(pool.Names);
            var jobs = _images.Select(i => new PlanJob(i.Image.Name, i.Parents)).ToList();
            var byName = _images.ToDictionary(i => i.Image.Name, StringComparer.Ordinal);
            foreach (var i in _images)
                foreach (var b in ExternalBases(i)) _knownImages.TryAdd(b, true);
            try
            {
                return await PlanScheduler.RunAsync(jobs, pool.Count, _options.Jobs ?? pool.Count,
                    (request, ct) => RunImageAsync(pool, byName[request.Job.Name], request, ct), events, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                await RemoveHandOffTagsAsync(pool).ConfigureAwait(false);
            }
        }
    }

    private async Task<PlanJobOutput> RunImageAsync(PlanEnginePool pool, PlanRunImage image, PlanJobRequest request, CancellationToken ct)
    {
        var parentIds = request.Parents.ToDictionary(p => p.Key, p => p.Value.ImageId, StringComparer.Ordinal);
        var inputs = await _hasher(image.Image, parentIds, ct).ConfigureAwait(false);
        if (!_options.NoCache)
        {
            var check = await CheckAsync(pool.Home, image.Image, inputs, ct).ConfigureAwait(false);
            if (check.Status == PlanImageStatus.UpToDate)
            {
                _knownImages.TryAdd(check.ImageId!, true);
                return new PlanJobOutput(check.ImageId!, false, null, "up to date");
            }
        }

        var engine = await pool.GetAsync(request.Engine, ct).ConfigureAwait(false);
        var isHome = pool.IsHome(request.Engine);
        // Base images from outside the plan come from the home engine when the build engine lacks them (a dind engine
        // starts empty); what the home engine lacks too is left for the build engine to pull.
        if (!isHome)
        {
            var bases = ExternalBases(image).ToList();
            if (bases.Count > 0) await ImageTransfer.CopyAsync(pool.Home, engine, bases, ct).ConfigureAwait(false);
        }

        var replacements = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var parentName in image.References.Values.Distinct(StringComparer.Ordinal))
        {
            if (!request.Parents.TryGetValue(parentName, out var parent)) continue;
            var parentImage = _images.First(i => i.Image.Name == parentName).Image;
            replacements[parentName] = await HandOffAsync(pool, request.Engine, engine, parentImage, parent, ct).ConfigureAwait(false);
        }

        var dockerfileText = await File.ReadAllTextAsync(image.Image.Dockerfile, ct).ConfigureAwait(false);
        var rewritten = image.References.Count == 0 ? dockerfileText : image.Rewrite(dockerfileText, p => replacements.GetValueOrDefault(p));
        string? rewrittenDirectory = null;
        var dockerfile = image.Image.Dockerfile;
        if (!string.Equals(rewritten, dockerfileText, StringComparison.Ordinal))
        {
            rewrittenDirectory = Path.Combine(_options.TempDirectory ?? Path.GetTempPath(), $"layertool-plan-{Guid.NewGuid():N}");
            Directory.CreateDirectory(rewrittenDirectory);
            dockerfile = Path.Combine(rewrittenDirectory, Path.GetFileName(image.Image.Dockerfile));
            await File.WriteAllTextAsync(dockerfile, rewritten, ct).ConfigureAwait(false);
        }

        var logPath = LogPath(image.Image.Name);
        Directory.CreateDirectory(Path.GetDirectoryName(logPath)!);
        BuildResult result;
        try
        {
            var logFile = new StreamWriter(logPath, append: false) { AutoFlush = true };
            await using (logFile.ConfigureAwait(false))
            {
                var options = new BuildOptions(
                    ContextDirectory: image.Image.Context,
                    DockerfilePath: dockerfile,
                    Tags: image.Image.Tags,
                    BuildArgs: image.Image.BuildArgs,
                    Target: image.Image.Target,
                    NetworkMode: _options.NetworkMode ?? (pool.IsDind(request.Engine) ? "host" : null),
                    NoCache: _options.NoCache,
                    Labels: new Dictionary<string, string>(StringComparer.Ordinal) { [PlanState.InputsLabel] = inputs, [PlanState.ImageLabel] = image.Image.Name },
                    Progress: ProgressMode.Plain,
                    CacheDirectory: _options.BuildCacheDirectory)
                {
                    BuildId = ProcessOwner.NewId(),
                };
                var reporting = new BuildReporting(new BuildLog(logFile, ProgressMode.Plain, false), () => new PlainProgress(logFile),
                    notice => logFile.WriteLine("layertool: " + notice));
                try
                {
                    result = await ImageBuilds.BuildAsync(engine, options, _options.Builder, reporting, ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is BuildException or EngineException or DockerApiException && !ct.IsCancellationRequested)
                {
                    await logFile.WriteLineAsync("layertool: " + e.Message).ConfigureAwait(false);
                    throw new BuildException($"{e.Message.Trim()} (log: {logPath})", e);
                }
            }
        }
        finally
        {
            if (rewrittenDirectory is not null) Sweeper.TryDeleteDirectory(rewrittenDirectory);
        }

        _knownImages.TryAdd(result.ImageId, true);
        string? pushed = null;
        // The engine that ran the build keeps the tags; the home engine gets them too when it is another engine.
        if (image.Image.Outputs.HasFlag(PlanOutputs.Engine) && !isHome)
        {
            await PlanImageTransfer.CopyAsync(engine, pool.Home, result.ImageId, image.Image.Tags, _knownImages.Keys, _options.TempDirectory, ct).ConfigureAwait(false);
            foreach (var tagged in result.TaggedImages)
                await PlanImageTransfer.CopyAsync(engine, pool.Home, tagged.ImageId, [tagged.Reference], _knownImages.Keys, _options.TempDirectory, ct).ConfigureAwait(false);
        }
        if (image.Image.Outputs.HasFlag(PlanOutputs.Registry))
        {
            var repository = RepositoryOf(image.Image) ?? throw new BuildException($"{image.Image.Location}: {image.Image.Name} goes to a registry, but neither it nor the plan names one");
            pushed = await PushAsync(engine, image.Image.Name, repository, result.ImageId, [.. image.Image.Tags.Select(TagPart), "plan-" + Hex(inputs)[..16]], ct).ConfigureAwait(false);
        }

        lock (_stateGate)
        {
            _state.Set(image.Image.Name, new PlanStateEntry(inputs, result.ImageId, pushed ?? _pushed.GetValueOrDefault(image.Image.Name)));
            _state.Save();
        }
        return new PlanJobOutput(result.ImageId, true, request.Engine,
            string.Create(CultureInfo.InvariantCulture, $"{result.Steps} steps, {result.CachedSteps} cached"));
    }

    /// <summary>
    /// Makes a parent's image available on the child's engine and returns the reference the child's Dockerfile gets:
    /// <c>repo@digest</c> through a registry (the engine pulls it), else a content-named tag (transferred first when
    /// the engine lacks the image).
    /// </summary>
    private async Task<string> HandOffAsync(PlanEnginePool pool, int engineIndex, DockerConnection engine, PlanImage parent, PlanJobOutput output,
        CancellationToken ct)
    {
        var buildEngine = new DockerBuildEngine(engine);
        var there = await buildEngine.InspectImageAsync(output.ImageId, ct).ConfigureAwait(false) is not null;
        if (!there && RepositoryOf(parent) is { } repository && RegistryPrefix is not null)
        {
            var source = output.Engine is { } built ? await pool.GetAsync(built, ct).ConfigureAwait(false) : pool.Home;
            var pushed = _pushed.GetValueOrDefault(parent.Name);
            if (pushed is null && _state.Get(parent.Name) is { } entry && entry.ImageId == output.ImageId) pushed = entry.Pushed;
            pushed ??= await PushAsync(source, parent.Name, repository, output.ImageId, ["plan-" + Hex(output.ImageId)[..16]], ct).ConfigureAwait(false);
            await buildEngine.PullImageAsync(pushed, null, ct).ConfigureAwait(false);
            var pulled = await buildEngine.InspectImageAsync(pushed, ct).ConfigureAwait(false);
            if (pulled?.Id != output.ImageId)
                throw new EngineException($"{pushed} pulled into {pool.Names[engineIndex]} is {pulled?.Id ?? "nothing"}, not {output.ImageId}");
            _log?.Report($"{parent.Name} -> {pool.Names[engineIndex]}: pulled {pushed}");
            return pushed;
        }

        var tag = $"{HandOffRepository}/{SafeName(parent.Name)}:{Hex(output.ImageId)[..16]}";
        if (!there)
        {
            var sourceIndex = output.Engine;
            var source = sourceIndex is { } built ? await pool.GetAsync(built, ct).ConfigureAwait(false) : pool.Home;
            // With its own tags too: the hand-off tag can then go at the end without deleting the image.
            var sent = await PlanImageTransfer.CopyAsync(source, engine, output.ImageId, [tag, .. parent.Tags], _knownImages.Keys, _options.TempDirectory, ct).ConfigureAwait(false);
            _log?.Report(string.Create(CultureInfo.InvariantCulture,
                $"{parent.Name} -> {pool.Names[engineIndex]}: {sent.LayersSent} layer(s) sent, {sent.LayersSkipped} already there{(sent.Full ? " (whole image)" : "")}"));
        }
        else
        {
            await buildEngine.TagImageAsync(output.ImageId, tag, ct).ConfigureAwait(false);
        }
        if (!pool.IsDind(engineIndex)) _handOffTags.TryAdd((engineIndex, tag), true);
        return tag;
    }

    /// <summary>Pushes an image from an engine under each tag; returns <c>repo@digest</c> (once per image and run).</summary>
    private async Task<string> PushAsync(DockerConnection engine, string name, string repository, string imageId, IReadOnlyList<string> tags, CancellationToken ct)
    {
        var gate = _pushGates.GetOrAdd(name, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            using var archive = await EngineImageArchive.OpenAsync(new DockerImageEngine(engine), imageId, _options.TempDirectory, ct).ConfigureAwait(false);
            var digest = await _options.RegistryClient!.PushAsync(archive.GetImage(), repository, [.. tags.Distinct(StringComparer.Ordinal)], ct).ConfigureAwait(false);
            var reference = $"{repository}@{digest}";
            _pushed[name] = reference;
            _log?.Report($"{name}: pushed {reference}");
            return reference;
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>Whether an image is up to date in the home engine (and the registry, for registry outputs).</summary>
    private async Task<PlanStatusLine> CheckAsync(DockerConnection home, PlanImage image, string inputs, CancellationToken ct)
    {
        var entry = _state.Get(image.Name);
        string? id = null;
        var engine = new DockerBuildEngine(home);
        if (image.Outputs.HasFlag(PlanOutputs.Engine))
        {
            var lookup = entry?.ImageId ?? (image.Tags.Count > 0 ? image.Tags[0] : null);
            if (lookup is null) return new PlanStatusLine(image.Name, PlanImageStatus.Missing, "never built (no record, no tag)", null);
            var inspected = await InspectLabelsAsync(home, lookup, ct).ConfigureAwait(false);
            if (inspected is null && entry is not null && image.Tags.Count > 0) inspected = await InspectLabelsAsync(home, image.Tags[0], ct).ConfigureAwait(false);
            if (inspected is null) return new PlanStatusLine(image.Name, PlanImageStatus.Missing, $"no image {lookup} in the local engine", entry?.ImageId);
            id = inspected.Value.Id;
            var label = inspected.Value.Labels.TryGetValue(PlanState.InputsLabel, out var l) ? l : null;
            if (label is null) return new PlanStatusLine(image.Name, PlanImageStatus.Stale, $"{lookup} was not built by a plan run", id);
            if (label != inputs) return new PlanStatusLine(image.Name, PlanImageStatus.Stale, "its inputs changed (context, Dockerfile, args or a parent)", id);
            foreach (var tag in image.Tags)
            {
                var tagged = await engine.InspectImageAsync(tag, ct).ConfigureAwait(false);
                if (tagged is null) return new PlanStatusLine(image.Name, PlanImageStatus.Missing, $"the tag {tag} is gone", id);
                if (tagged.Id != id) return new PlanStatusLine(image.Name, PlanImageStatus.Stale, $"the tag {tag} names another image", id);
            }
        }
        if (image.Outputs.HasFlag(PlanOutputs.Registry))
        {
            if (entry is null || entry.Inputs != inputs || entry.Pushed is null)
                return new PlanStatusLine(image.Name, entry is null ? PlanImageStatus.Missing : PlanImageStatus.Stale,
                    entry is null ? "never pushed" : "its inputs changed since the last push", entry?.ImageId);
            if (_options.RegistryClient is null) return new PlanStatusLine(image.Name, PlanImageStatus.Stale, "no registry client to check the push", entry.ImageId);
            if (await _options.RegistryClient.CheckAsync(entry.Pushed, ct).ConfigureAwait(false) is { } why)
                return new PlanStatusLine(image.Name, PlanImageStatus.Missing, $"{entry.Pushed}: {why}", entry.ImageId);
            _pushed[image.Name] = entry.Pushed;
            id ??= entry.ImageId;
        }
        return new PlanStatusLine(image.Name, PlanImageStatus.UpToDate, null, id);
    }

    /// <summary>
    /// <c>plan status</c>: each image in dependency order, up to date / stale (why) / missing. A child of an image that
    /// is not up to date is stale: its parent will be rebuilt first.
    /// </summary>
    public async Task<IReadOnlyList<PlanStatusLine>> StatusAsync(DockerConnection home, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(home);
        var lines = new Dictionary<string, PlanStatusLine>(StringComparer.Ordinal);
        var byName = _images.ToDictionary(i => i.Image.Name, StringComparer.Ordinal);
        var order = TopologicalOrder();
        foreach (var name in order)
        {
            var image = byName[name];
            var notReady = image.Parents.FirstOrDefault(p => lines[p].Status != PlanImageStatus.UpToDate || lines[p].ImageId is null);
            if (notReady is not null)
            {
                lines[name] = new PlanStatusLine(name, _state.Get(name) is null ? PlanImageStatus.Missing : PlanImageStatus.Stale, $"its parent {notReady} is {Word(lines[notReady].Status)}", _state.Get(name)?.ImageId);
                continue;
            }
            var inputs = await _hasher(image.Image, image.Parents.ToDictionary(p => p, p => lines[p].ImageId!, StringComparer.Ordinal), cancellationToken).ConfigureAwait(false);
            lines[name] = await CheckAsync(home, image.Image, inputs, cancellationToken).ConfigureAwait(false);
        }
        return [.. _images.Select(i => lines[i.Image.Name])];
    }

    private static string Word(PlanImageStatus status) => status switch
    {
        PlanImageStatus.UpToDate => "up to date",
        PlanImageStatus.Stale => "stale",
        _ => "missing",
    };

    private List<string> TopologicalOrder()
    {
        var byName = _images.ToDictionary(i => i.Image.Name, StringComparer.Ordinal);
        var done = new HashSet<string>(StringComparer.Ordinal);
        var order = new List<string>();
        void Visit(string name, int depth)
        {
            if (done.Contains(name)) return;
            if (depth > byName.Count) throw new BuildException($"the plan's images depend on each other in a cycle through {name}");
            foreach (var p in byName[name].Parents) Visit(p, depth + 1);
            if (done.Add(name)) order.Add(name);
        }
        foreach (var i in _images) Visit(i.Image.Name, 0);
        return order;
    }

    private static async Task<(string Id, IDictionary<string, string> Labels)?> InspectLabelsAsync(DockerConnection engine, string reference, CancellationToken ct)
    {
        var image = await new DockerBuildEngine(engine).InspectImageAsync(reference, ct).ConfigureAwait(false);
        return image is null ? null : (image.Id, image.Config.Labels?.ToDictionary() ?? new Dictionary<string, string>());
    }

    /// <summary>The images an image's Dockerfile takes from outside the plan (FROM busybox...).</summary>
    private static IEnumerable<string> ExternalBases(PlanRunImage image)
    {
        var text = File.ReadAllText(image.Image.Dockerfile);
        return DindBaseImages.Of(DockerfileModel.Parse(text, image.Image.Dockerfile), image.Image.BuildArgs)
            .Where(r => !image.References.ContainsKey(r));
    }

    private async Task RemoveHandOffTagsAsync(PlanEnginePool pool)
    {
        using var budget = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        foreach (var ((engineIndex, tag), _) in _handOffTags)
        {
            try
            {
                var engine = await pool.GetAsync(engineIndex, budget.Token).ConfigureAwait(false);
                var images = new DockerImageEngine(engine);
                // The tag goes only when the image has another name: an untagged plan image keeps it, or it would be deleted.
                if ((await images.TryInspectImageAsync(tag, budget.Token).ConfigureAwait(false))?.RepoTags.Count > 1)
                    await images.RemoveImageAsync(tag, budget.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is EngineException or DockerApiException or OperationCanceledException or HttpRequestException or IOException or ObjectDisposedException)
            {
                _log?.Report($"could not remove the hand-off tag {tag}: {e.Message}");
            }
        }
        _handOffTags.Clear();
    }

    private static string TagPart(string reference)
    {
        var slash = reference.LastIndexOf('/');
        var colon = reference.LastIndexOf(':');
        return colon > slash ? reference[(colon + 1)..] : "latest";
    }

    private static string Hex(string digest) => digest.StartsWith("sha256:", StringComparison.Ordinal) ? digest[7..] : digest;

    private static string SafeName(string name)
    {
        var chars = name.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '-').ToArray();
        return new string(chars).Trim('.', '_', '-') is { Length: > 0 } s ? s : "image";
    }
}
