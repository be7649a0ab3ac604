using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using LayerTool.Build.Cache;
using LayerTool.Build.Context;
using LayerTool.Build.Engine;
using LayerTool.Build.Squash;
using LayerTool.Dockerfile;
using LayerTool.Dockerfile.Shell;
using LayerTool.Dockerfile.Syntax;

namespace LayerTool.Build.Execution;

/// <summary>
/// Runs a Dockerfile instruction by instruction through an <see cref="IDockerEngine"/>, the way Docker's
/// classic builder does, plus TAG and COMPRESS. One instance per build.
/// </summary>
public sealed partial class BuildExecutor
{
    /// <summary>Prefix of the names of every container a build creates: <c>layertool-build-&lt;build id&gt;-&lt;n&gt;</c>.</summary>
    public const string ContainerNamePrefix = "layertool-build-";

    private static readonly HashSet<string> BuiltinArgs = new(StringComparer.Ordinal)
    {
        "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
        "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
    };

    private readonly IDockerEngine _engine;
    private readonly ISquashService? _squash;
    private readonly HttpClient? _http;
    private readonly BuildOptions _options;
    private readonly BuildLog _log;
    /// <summary>Containers not removed yet, by ID (or by name while the create is in flight), to their names.</summary>
    private readonly ConcurrentDictionary<string, string> _liveContainers = new();
    private readonly List<Task> _pendingRemovals = [];
    private readonly Dictionary<int, StageState> _finishedStages = [];
    private readonly Dictionary<string, string> _tagged = new(StringComparer.Ordinal);
    private readonly List<TaggedImage> _taggedImages = [];
    private readonly List<CompressedImage> _compressions = [];
    private readonly HashSet<string> _usedBuildArgs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string?> _metaArgs = new(StringComparer.Ordinal);
    private readonly string _buildId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
    private BuildCache _cache = BuildCache.Disabled;
    private BuildContext _context = null!;
    private ShellWordExpander _expander = new();
    private string _fileName = "Dockerfile";
    private List<Stage> _stages = [];
    private int _step;
    private int _totalSteps;
    private int _cachedSteps;
    private int _containerCounter;
    private string? _emptyImageId;

    /// <param name="engine">The engine to build with.</param>
    /// <param name="squash">The squash engine for COMPRESS and --squash (null: those fail with a clear error).</param>
    /// <param name="http">For ADD of a URL (null: a default client).</param>
    /// <param name="options">What to build.</param>
    /// <param name="log">Where progress goes.</param>
    public BuildExecutor(IDockerEngine engine, ISquashService? squash, HttpClient? http, BuildOptions options, BuildLog log)
    {
        _engine = engine ?? throw new ArgumentNullException(nameof(engine));
        _squash = squash;
        _http = http;
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _log = log ?? throw new ArgumentNullException(nameof(log));
    }

    /// <summary>The ID that names this build's containers.</summary>
    public string BuildId => _buildId;

    /// <summary>Builds; removes every container it created whatever happens; tags only after success.</summary>
    public async Task<BuildResult> BuildAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await BuildCoreAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await RemoveLeftoversAsync().ConfigureAwait(false);
            _cache.Save();
        }
    }

    private async Task<BuildResult> BuildCoreAsync(CancellationToken ct)
    {
        var contextDir = Path.GetFullPath(_options.ContextDirectory);
        var dockerfile = _options.DockerfilePath is null
            ? Path.Combine(contextDir, "Dockerfile")
            : Path.GetFullPath(_options.DockerfilePath);
        if (!File.Exists(dockerfile)) throw new BuildException($"cannot read the Dockerfile: {dockerfile} does not exist");
        _fileName = Path.GetFileName(dockerfile);
        var relDockerfile = Path.GetRelativePath(contextDir, dockerfile);
        _context = BuildContext.Open(contextDir, relDockerfile.StartsWith("..", StringComparison.Ordinal) ? null : relDockerfile);
        if (_options.CacheDirectory is not null && !_options.NoCache) _cache = BuildCache.Open(_options.CacheDirectory);

        var syntax = DockerfileParser.Parse(await File.ReadAllTextAsync(dockerfile, ct).ConfigureAwait(false), _fileName);
        _expander = new ShellWordExpander(syntax.EscapeToken);
        _stages = SplitStages(syntax);
        var target = FindTarget();
        var needed = NeededStages(target);
        _totalSteps = _stages.Where(s => needed.Contains(s.Index)).Sum(s => 1 + s.Body.Count) + (_options.Labels is { Count: > 0 } ? 1 : 0);

        StageState? last = null;
        foreach (var stage in _stages.Where(s => needed.Contains(s.Index)))
        {
            last = await RunStageAsync(stage, stage.Index == target.Index, ct).ConfigureAwait(false);
            _finishedStages[stage.Index] = last;
        }
        if (last?.ImageId is null) throw new BuildException("the build produced no image (a scratch stage with no instruction that changes it)");

        if (_options.Squash)
        {
            last = await CompressAsync(last, last.BaseImageId, target.From, "--squash", ct).ConfigureAwait(false);
        }

        var unused = (_options.BuildArgs ?? new Dictionary<string, string>()).Keys.Where(k => !_usedBuildArgs.Contains(k) && !BuiltinArgs.Contains(k)).Order(StringComparer.Ordinal).ToList();
        if (unused.Count > 0) _log.Line($"[Warning] One or more build-args [{string.Join(' ', unused)}] were not consumed");

        var imageId = last.ImageId!;
        _log.AuxId(imageId);
        _log.Line($"Successfully built {BuildLog.ShortId(imageId)}");
        var tags = new List<string>();
        foreach (var tag in _options.Tags ?? [])
        {
            await _engine.TagImageAsync(imageId, tag, ct).ConfigureAwait(false);
            tags.Add(tag);
            _log.Line($"Successfully tagged {tag}");
        }
        if (_options.ImageIdFile is not null) await File.WriteAllTextAsync(_options.ImageIdFile, imageId, ct).ConfigureAwait(false);
        return new BuildResult(imageId, tags, _taggedImages, _compressions, _step, _cachedSteps);
    }

    private List<Stage> SplitStages(DockerfileSyntax syntax)
    {
        var stages = new List<Stage>();
        InstructionNode? from = null;
        var body = new List<InstructionNode>();
        foreach (var node in syntax.Instructions)
        {
            if (node.Keyword == Keywords.From)
            {
                if (from is not null) stages.Add(MakeStage(stages.Count, from, body));
                from = node;
                body = [];
            }
            else if (from is null)
            {
                if (node.Keyword != Keywords.Arg) throw Fail(node, "no build stage in current context: only ARG may come before the first FROM");
                DeclareMetaArgs(node);
            }
            else body.Add(node);
        }
        if (from is null) throw new BuildException($"{_fileName}: the Dockerfile has no FROM instruction");
        stages.Add(MakeStage(stages.Count, from, body));
        return stages;
    }

    private Stage MakeStage(int index, InstructionNode from, List<InstructionNode> body)
    {
        string? name = null;
        var args = from.Arguments;
        if (args.Count == 3 && args[1].Text.Equals("AS", StringComparison.OrdinalIgnoreCase)) name = args[2].Text.ToLowerInvariant();
        else if (args.Count != 1) throw Fail(from, "FROM requires either one or three arguments");
        return new Stage(index, name, from, body);
    }

    private void DeclareMetaArgs(InstructionNode node)
    {
        foreach (var word in node.Arguments)
        {
            var (name, value) = ParseArgWord(word.Text, MetaLookup());
            if (_options.BuildArgs?.TryGetValue(name, out var given) == true)
            {
                value = given;
                _usedBuildArgs.Add(name);
            }
            _metaArgs[name] = value;
        }
    }

    private (string Name, string? Value) ParseArgWord(string word, IVariableLookup lookup)
    {
        var eq = word.IndexOf('=', StringComparison.Ordinal);
        if (eq < 0) return (word, null);
        return (word[..eq], _expander.ExpandWord(word[(eq + 1)..], lookup));
    }

    private VariableLookup MetaLookup() =>
        new(_metaArgs.Where(kv => kv.Value is not null).Select(kv => KeyValuePair.Create(kv.Key, kv.Value!)));

    private Stage FindTarget()
    {
        if (_options.Target is null) return _stages[^1];
        var t = _options.Target.ToLowerInvariant();
        return _stages.FirstOrDefault(s => s.Name == t) ?? throw new BuildException($"failed to reach build target {_options.Target} in Dockerfile");
    }

    /// <summary>The target and, transitively, the stages its FROM and COPY --from name.</summary>
    private HashSet<int> NeededStages(Stage target)
    {
        var needed = new HashSet<int>();
        var pending = new Stack<Stage>([target]);
        while (pending.Count > 0)
        {
            var s = pending.Pop();
            if (!needed.Add(s.Index)) continue;
            var refs = new List<string> { ExpandMeta(s.From.Arguments[0].Text) };
            refs.AddRange(s.Body.Concat(s.Body.Where(n => n.Trigger is not null).Select(n => n.Trigger!))
                .Where(n => n.Keyword is Keywords.Copy or Keywords.Add)
                .SelectMany(n => n.Flags)
                .Where(f => f.Text.StartsWith("--from=", StringComparison.Ordinal))
                .Select(f => ExpandMeta(f.Text["--from=".Length..])));
            foreach (var r in refs)
            {
                var dep = FindStage(r, s.Index);
                if (dep is not null) pending.Push(dep);
            }
        }
        return needed;
    }

    private string ExpandMeta(string word) => _expander.ExpandWord(word, MetaLookup());

    /// <summary>An earlier stage named (or numbered) <paramref name="reference"/>, or null.</summary>
    private Stage? FindStage(string reference, int before)
    {
        var lower = reference.ToLowerInvariant();
        var byName = _stages.FirstOrDefault(s => s.Index < before && s.Name == lower);
        if (byName is not null) return byName;
        return int.TryParse(reference, NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i < before ? _stages[i] : null;
    }

    private async Task<StageState> RunStageAsync(Stage stage, bool isTarget, CancellationToken ct)
    {
        var state = new StageState(stage);
        await Step(stage.From, () => FromAsync(state, ct), ct).ConfigureAwait(false);
        foreach (var node in stage.Body)
        {
            ct.ThrowIfCancellationRequested();
            BeginStep(node);
            await Step(node, () => ExecuteAsync(state, node, ct), ct).ConfigureAwait(false);
        }
        if (isTarget && _options.Labels is { Count: > 0 } labels)
        {
            var text = "LABEL " + string.Join(' ', labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"\"{l.Key}\"='{l.Value}'"));
            _step++;
            _log.Line($"Step {_step}/{_totalSteps} : {text}");
            var merged = new Dictionary<string, string>(state.Config.Labels, StringComparer.Ordinal);
            foreach (var (k, v) in labels) merged[k] = v;
            await CommitMetadataAsync(state, stage.From, text, state.Config with { Labels = merged }, ct).ConfigureAwait(false);
        }
        return state;
    }

    /// <summary>Runs one step; an engine failure it did not attribute itself names the step's line.</summary>
    private async Task Step(InstructionNode node, Func<Task> step, CancellationToken ct)
    {
        try
        {
            await step().ConfigureAwait(false);
        }
        catch (EngineException e) when (!ct.IsCancellationRequested)
        {
            throw Fail(node, e.Message, e);
        }
    }

    private void BeginStep(InstructionNode node)
    {
        _step++;
        _log.Line($"Step {_step}/{_totalSteps} : {node.Original.Trim()}");
    }

    private async Task FromAsync(StageState state, CancellationToken ct)
    {
        var node = state.Stage.From;
        BeginStep(node);
        var reference = ExpandMeta(node.Arguments[0].Text);
        if (reference.Length == 0) throw Fail(node, "base name (" + node.Arguments[0].Text + ") should not be blank");
        var stageRef = FindStage(reference, state.Stage.Index);
        if (stageRef is not null && string.Equals(stageRef.Name, reference, StringComparison.OrdinalIgnoreCase))
        {
            var prior = _finishedStages[stageRef.Index];
            state.ImageId = prior.ImageId;
            state.BaseImageId = prior.ImageId;
            state.Config = prior.Config;
        }
        else if (reference.Equals("scratch", StringComparison.OrdinalIgnoreCase))
        {
            state.ImageId = null;
            state.BaseImageId = null;
            state.Config = new ContainerConfig { Env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] };
            _log.Line(" ---> ");
        }
        else
        {
            var normalized = reference.Contains('@', StringComparison.Ordinal) || HasTag(reference) ? reference : reference + ":latest";
            EngineImage? image = null;
            if (!_options.Pull) image = await _engine.InspectImageAsync(normalized, ct).ConfigureAwait(false);
            if (image is null)
            {
                _log.Line($"{(_options.Pull ? "Pulling" : "Unable to find image '" + normalized + "' locally; pulling")} {normalized}");
                try
                {
                    await _engine.PullImageAsync(normalized, new Progress<string>(_ => { }), ct).ConfigureAwait(false);
                }
                catch (EngineException e)
                {
                    throw Fail(node, $"cannot get base image {normalized}: {e.Message}", e);
                }
                image = await _engine.InspectImageAsync(normalized, ct).ConfigureAwait(false)
                    ?? throw Fail(node, $"base image {normalized} is still missing after the pull");
            }
            state.ImageId = image.Id;
            state.BaseImageId = image.Id;
            state.Config = image.Config;
        }
        if (state.ImageId is not null) _log.Line($" ---> {BuildLog.ShortId(state.ImageId)}");

        // The base's ONBUILD triggers run first, then the list is cleared.
        var triggers = state.Config.OnBuild ?? [];
        if (triggers.Count > 0)
        {
            _log.Line($"# Executing {triggers.Count} build trigger{(triggers.Count == 1 ? "" : "s")}");
            state.Config = state.Config with { OnBuild = [] };
            foreach (var trigger in triggers)
            {
                var parsed = DockerfileParser.Parse(trigger + "\n", _fileName).Instructions;
                foreach (var t in parsed)
                {
                    var located = t with { Range = node.Range, Position = node.Position };
                    if (t.Keyword is Keywords.Onbuild or Keywords.From or Keywords.Maintainer)
                        throw Fail(node, $"{t.Keyword} isn't allowed as an ONBUILD trigger");
                    await ExecuteAsync(state, located, ct).ConfigureAwait(false);
                }
            }
        }
        else if (state.Config.OnBuild is not null && state.ImageId is not null)
        {
            state.Config = state.Config with { OnBuild = null };
        }
    }

    private static bool HasTag(string reference)
    {
        var slash = reference.LastIndexOf('/');
        return reference.IndexOf(':', slash + 1) >= 0;
    }

    private Task ExecuteAsync(StageState state, InstructionNode node, CancellationToken ct)
    {
        if (node.Error is not null) throw node.Error.ToException();
        if (node.Heredocs.Count > 0) throw Fail(node, "heredocs need BuildKit; the classic builder (and layertool) does not support them");
        return node.Keyword switch
        {
            Keywords.Run => RunAsync(state, node, ct),
            Keywords.Copy => CopyAsync(state, node, isAdd: false, ct),
            Keywords.Add => CopyAsync(state, node, isAdd: true, ct),
            Keywords.Env => EnvAsync(state, node, ct),
            Keywords.Arg => ArgAsync(state, node, ct),
            Keywords.Label => LabelAsync(state, node, ct),
            Keywords.Expose => ExposeAsync(state, node, ct),
            Keywords.Volume => VolumeAsync(state, node, ct),
            Keywords.User => UserAsync(state, node, ct),
            Keywords.Workdir => WorkdirAsync(state, node, ct),
            Keywords.Cmd => CmdAsync(state, node, ct),
            Keywords.Entrypoint => EntrypointAsync(state, node, ct),
            Keywords.Healthcheck => HealthcheckAsync(state, node, ct),
            Keywords.StopSignal => StopSignalAsync(state, node, ct),
            Keywords.Shell => ShellAsync(state, node, ct),
            Keywords.Onbuild => OnbuildAsync(state, node, ct),
            Keywords.Maintainer => MaintainerAsync(state, node, ct),
            Keywords.Tag => TagAsync(state, node, ct),
            Keywords.Compress => CompressStepAsync(state, node, ct),
            Keywords.From => throw Fail(node, "FROM cannot appear here"),
            _ => throw Fail(node, $"unknown instruction: {node.KeywordAsWritten}"),
        };
    }

    /// <summary>Variables a step's words see: the stage's ARGs with values, then ENV over them.</summary>
    private static VariableLookup Lookup(StageState state)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in state.Args) if (v is not null) values[k] = v;
        foreach (var e in state.Config.Env)
        {
            var eq = e.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0) values[e[..eq]] = e[(eq + 1)..];
        }
        return new VariableLookup(values);
    }

    private string Expand(StageState state, string word) => _expander.ExpandWord(word, Lookup(state));

    /// <summary>Build args a RUN sees in its environment (never persisted): declared ones with values, not shadowed by ENV.</summary>
    private List<KeyValuePair<string, string>> RunArgs(StageState state)
    {
        var list = new List<KeyValuePair<string, string>>();
        foreach (var (k, v) in state.Args.OrderBy(a => a.Key, StringComparer.Ordinal))
            if (v is not null && state.Config.GetEnv(k) is null) list.Add(KeyValuePair.Create(k, v));
        foreach (var k in BuiltinArgs.Order(StringComparer.Ordinal))
            if (!state.Args.ContainsKey(k) && _options.BuildArgs?.TryGetValue(k, out var v) == true && state.Config.GetEnv(k) is null)
                list.Add(KeyValuePair.Create(k, v));
        return list;
    }

    private string ArgsKey(StageState state) => string.Join('\n', RunArgs(state).Select(a => a.Key + "=" + a.Value));

    private BuildException Fail(InstructionNode node, string message, Exception? inner = null)
    {
        var text = $"{_fileName}:{node.Range.StartLine}: {message}";
        return inner is null ? new BuildException(text) : new BuildException(text, inner);
    }

    // ---- commits -------------------------------------------------------------------------------------

    private string NextContainerName() => $"{ContainerNamePrefix}{_buildId}-{Interlocked.Increment(ref _containerCounter)}";

    private async Task<string> ParentImageAsync(StageState state, CancellationToken ct)
    {
        if (state.ImageId is not null) return state.ImageId;
        return _emptyImageId ??= await _engine.ImportEmptyImageAsync(ct).ConfigureAwait(false);
    }

    /// <summary>
    /// The container and commit configs for a step whose command is <paramref name="command"/> (a RUN's, or
    /// the <c>#(nop)</c> one of other steps). The commit endpoint fills an empty Cmd from the container's, so
    /// when the image has neither Cmd nor Entrypoint the command goes in the container's Entrypoint instead
    /// and the image gets an empty (not null) Entrypoint.
    /// </summary>
    private static (ContainerConfig Container, ContainerConfig Commit) StepConfigs(ContainerConfig intended, IReadOnlyList<string> command)
    {
        if ((intended.Cmd?.Count ?? 0) == 0 && (intended.Entrypoint?.Count ?? 0) == 0)
            return (intended with { Entrypoint = command, Cmd = null }, intended with { Entrypoint = [] });
        return (intended with { Cmd = command, Entrypoint = intended.Entrypoint is null ? null : [] }, intended);
    }

    private async Task<string> CreateContainerAsync(string image, ContainerConfig config, CancellationToken ct)
    {
        var name = NextContainerName();
        _liveContainers[name] = name;
        var id = await _engine.CreateContainerAsync(new ContainerSpec(image, config, _options.NetworkMode, name), ct).ConfigureAwait(false);
        _liveContainers[id] = name;
        _liveContainers.TryRemove(name, out _);
        return id;
    }

    /// <summary>
    /// Removes a step's container in the background (the next step need not wait for the engine to delete
    /// a layer); the build waits for every removal before it ends, whatever the outcome.
    /// </summary>
    private Task RemoveContainerAsync(string id, CancellationToken ct)
    {
        var removal = Task.Run(async () =>
        {
            try
            {
                await _engine.RemoveContainerAsync(id, ct).ConfigureAwait(false);
                _liveContainers.TryRemove(id, out _);
            }
            catch (EngineException)
            {
                // Left in _liveContainers: the final clean-up tries again.
            }
        }, CancellationToken.None);
        lock (_pendingRemovals) _pendingRemovals.Add(removal);
        return Task.CompletedTask;
    }

    private async Task RemoveLeftoversAsync()
    {
        Task[] pending;
        lock (_pendingRemovals) pending = [.. _pendingRemovals];
        await Task.WhenAll(pending).ConfigureAwait(false);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var left = new List<string>();
        foreach (var (key, name) in _liveContainers)
        {
            try
            {
                await _engine.RemoveContainerAsync(key, timeout.Token).ConfigureAwait(false);
                if (key.StartsWith(ContainerNamePrefix, StringComparison.Ordinal))
                {
                    // A create cancelled on our side may still finish in the engine: look again shortly.
                    for (var i = 0; i < 5; i++)
                    {
                        await Task.Delay(200, timeout.Token).ConfigureAwait(false);
                        await _engine.RemoveContainerAsync(key, timeout.Token).ConfigureAwait(false);
                    }
                }
            }
            catch (Exception e) when (e is EngineException or OperationCanceledException)
            {
                // Best effort: the engine may be gone. Say what is left, by name.
                left.Add(name);
            }
        }
        if (left.Count > 0)
            _log.Line($"[Warning] could not remove the build container{(left.Count == 1 ? "" : "s")} {string.Join(' ', left)}; remove with: docker rm -f {string.Join(' ', left)}");
    }

    /// <summary>Looks the step up in the cache; on a valid hit the stage moves to that image.</summary>
    private async Task<bool> TryCacheAsync(StageState state, string key, ContainerConfig newConfig, CancellationToken ct)
    {
        if (!_cache.Enabled || state.CacheBusted) return false;
        var hit = _cache.Lookup(key);
        if (hit is not null)
        {
            var image = await _engine.InspectImageAsync(hit, ct).ConfigureAwait(false);
            if (image is not null)
            {
                state.ImageId = image.Id;
                state.Config = newConfig;
                _cachedSteps++;
                _log.Line(" ---> Using cache");
                _log.Line($" ---> {BuildLog.ShortId(image.Id)}");
                return true;
            }
            _cache.Forget(key);
        }
        state.CacheBusted = true;
        return false;
    }

    private string StepKey(StageState state, string instruction, string? extra = null) =>
        BuildCache.Key(state.ImageId ?? "scratch", instruction, state.Config.ToCanonicalJson(), ArgsKey(state), state.Maintainer, extra);

    /// <summary>A step that changes only the config: a container that is never started, committed with the new config.</summary>
    private async Task CommitMetadataAsync(StageState state, InstructionNode node, string text, ContainerConfig newConfig, CancellationToken ct)
    {
        var key = StepKey(state, text);
        if (await TryCacheAsync(state, key, newConfig, ct).ConfigureAwait(false)) return;
        var nop = state.Shell.Concat(["#(nop) ", text]).ToList();
        await CommitStepAsync(state, node, key, newConfig, nop, prepare: null, ct).ConfigureAwait(false);
    }

    /// <summary>Creates the step's container, lets <paramref name="prepare"/> change it, commits with the full config and removes it.</summary>
    private async Task CommitStepAsync(StageState state, InstructionNode node, string? key, ContainerConfig newConfig, IReadOnlyList<string> command,
        Func<string, Task>? prepare, CancellationToken ct)
    {
        var (containerConfig, commitConfig) = StepConfigs(newConfig, command);
        var parent = await ParentImageAsync(state, ct).ConfigureAwait(false);
        var id = await CreateContainerAsync(parent, containerConfig, ct).ConfigureAwait(false);
        try
        {
            if (prepare is not null) await prepare(id).ConfigureAwait(false);
            var imageId = await _engine.CommitAsync(id, commitConfig, state.Maintainer, ct).ConfigureAwait(false);
            state.ImageId = imageId;
            state.Config = newConfig;
            if (key is not null) _cache.Store(key, imageId);
        }
        catch (EngineException e) when (!ct.IsCancellationRequested)
        {
            throw Fail(node, e.Message, e);
        }
        finally
        {
            if (!ct.IsCancellationRequested) await RemoveContainerAsync(id, CancellationToken.None).ConfigureAwait(false);
        }
        _log.Line($" ---> {BuildLog.ShortId(state.ImageId!)}");
    }
}
