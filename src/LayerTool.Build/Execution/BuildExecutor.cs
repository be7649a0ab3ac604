using LayerTool.Image;
using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using LayerTool.Build.Cache;
using LayerTool.Build.Context;
using LayerTool.Docker;
using LayerTool.Docker.Squash;
using LayerTool.Dockerfile;
using LayerTool.Dockerfile.Instructions;
using LayerTool.Dockerfile.Model;
using LayerTool.Dockerfile.Shell;
using LayerTool.Dockerfile.Syntax;
using Stage = LayerTool.Dockerfile.Model.Stage;
using LayerTool.Docker.Images;

namespace LayerTool.Build.Execution;

/// <summary>
/// Runs a Dockerfile instruction by instruction through an <see cref="IDockerEngine"/>, the way Docker's
/// classic builder does, plus TAG and COMPRESS. One instance per build.
/// </summary>
public sealed partial class BuildExecutor
{
    /// <summary>Prefix of the names of every container a build creates: <c>layertool-build-&lt;build id&gt;-&lt;n&gt;</c>.</summary>
    public const string ContainerNamePrefix = LayerTool.Docker.Sweep.Sweeper.BuildPrefix;

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
    private readonly string _buildId;
    private BuildCache _cache = BuildCache.Disabled;
    private BuildContext _context = null!;
    private ShellWordExpander _expander = new();
    private string _fileName = "Dockerfile";
    private DockerfileModel _model = null!;
    private int _step;
    private string _dockerfileText = "";
    private int _totalSteps;
    private int _cachedSteps;
    private int _containerCounter;
    private string? _emptyImageId;
    private bool? _argsInEnv;

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
        _buildId = options.BuildId ?? Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
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

        var text = await File.ReadAllTextAsync(dockerfile, ct).ConfigureAwait(false);
        _dockerfileText = text;
        try
        {
            // The whole file is read and checked before the first step, as the classic builder does.
            _model = DockerfileModelBuilder.Build(DockerfileParser.Parse(text, _fileName));
        }
        catch (DockerfileException e)
        {
            throw new BuildException($"{e.FileName}:{e.Line}: {e.Detail}", e);
        }
        _expander = _model.CreateExpander();
        foreach (var meta in _model.MetaArgs) DeclareMetaArgs(meta);
        var target = FindTarget();
        var needed = NeededStages(target);
        _totalSteps = _model.Stages.Where(s => needed.Contains(s.Index)).Sum(s => 1 + s.Instructions.Count) + (_options.Labels is { Count: > 0 } ? 1 : 0);

        StageState? last = null;
        foreach (var stage in _model.Stages.Where(s => needed.Contains(s.Index)))
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

    private void DeclareMetaArgs(ArgInstruction arg)
    {
        foreach (var decl in arg.Args)
        {
            var value = decl.DefaultValue is null ? null : _expander.ExpandWord(decl.DefaultValue, MetaLookup());
            if (_options.BuildArgs?.TryGetValue(decl.Name, out var given) == true)
            {
                value = given;
                _usedBuildArgs.Add(decl.Name);
            }
            _metaArgs[decl.Name] = value;
        }
    }

    private VariableLookup MetaLookup() =>
        new(_metaArgs.Where(kv => kv.Value is not null).Select(kv => KeyValuePair.Create(kv.Key, kv.Value!)));

    private Stage FindTarget()
    {
        if (_options.Target is null) return _model.Stages[^1];
        var t = _options.Target.ToLowerInvariant();
        return _model.Stages.FirstOrDefault(s => s.Name == t) ?? throw new BuildException($"failed to reach build target {_options.Target} in Dockerfile");
    }

    /// <summary>The target and, transitively, the stages its FROM, COPY --from and COMPRESS name.</summary>
    private HashSet<int> NeededStages(Stage target)
    {
        var needed = new HashSet<int>();
        var pending = new Stack<Stage>([target]);
        while (pending.Count > 0)
        {
            var s = pending.Pop();
            if (!needed.Add(s.Index)) continue;
            var refs = new List<string> { ExpandMeta(s.From.BaseName) };
            var body = s.Instructions.Select(i => i is OnbuildInstruction o ? o.Trigger : i).ToList();
            refs.AddRange(body.OfType<CopyInstruction>().Select(c => c.From).OfType<string>().Select(ExpandMeta));
            // A COMPRESS onto an earlier stage needs that stage's image.
            refs.AddRange(body.OfType<CompressInstruction>().Select(c => c.Base).OfType<string>().Where(b => !b.Contains('$', StringComparison.Ordinal)));
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
        var byName = _model.Stages.FirstOrDefault(s => s.Index < before && s.Name == lower);
        if (byName is not null) return byName;
        return int.TryParse(reference, NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i < before ? _model.Stages[i] : null;
    }

    private async Task<StageState> RunStageAsync(Stage stage, bool isTarget, CancellationToken ct)
    {
        var state = new StageState(stage);
        await Step(stage.From, () => FromAsync(state, ct), ct).ConfigureAwait(false);
        foreach (var instruction in stage.Instructions)
        {
            ct.ThrowIfCancellationRequested();
            BeginStep(instruction);
            await Step(instruction, () => ExecuteAsync(state, instruction, ct), ct).ConfigureAwait(false);
        }
        IReadOnlyDictionary<string, string> user = _options.Labels ?? new Dictionary<string, string>();
        var recorded = isTarget && RecordsBase(stage) && state.RootBase is { } root ? BaseLabels.For(root.Reference, root.Image) : null;
        if (isTarget && (user.Count > 0 || recorded is not null))
        {
            var labels = recorded is null ? user : BaseLabels.Merge(user, recorded);
            var text = "LABEL " + string.Join(' ', labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"\"{l.Key}\"='{l.Value}'"));
            if (user.Count > 0)
            {
                _step++;
                _log.Line($"Step {_step}/{_totalSteps} : {text}");
            }
            else
            {
                // Not a numbered step: docker's builder has none, and the step count stays docker's.
                _log.Line($"Recording the base image: {text}");
            }
            var merged = new Dictionary<string, string>(state.Config.Labels ?? new Dictionary<string, string>(), StringComparer.Ordinal);
            foreach (var (k, v) in labels) merged[k] = v;
            await CommitMetadataAsync(state, stage.From, text, state.Config with { Labels = merged }, ct).ConfigureAwait(false);
        }
        return state;
    }

    /// <summary>Whether the build records the base labels on <paramref name="target"/>'s image: asked for, not set by the user,
    /// and the stage not based on scratch (its FROM followed through earlier stages, as <see cref="FromAsync"/> does).</summary>
    private bool RecordsBase(Stage target)
    {
        if (!_options.RecordBase || BaseLabels.UserSets(_options.Labels, _dockerfileText)) return false;
        var stage = target;
        while (true)
        {
            var reference = ExpandMeta(stage.From.BaseName);
            var from = FindStage(reference, stage.Index);
            if (from is not null && string.Equals(from.Name, reference, StringComparison.OrdinalIgnoreCase))
            {
                stage = from;
                continue;
            }

            return !reference.Equals("scratch", StringComparison.OrdinalIgnoreCase) && reference.Length > 0;
        }
    }

    /// <summary>Runs one step; an engine failure it did not attribute itself names the step's line.</summary>
    private async Task Step(Instruction instruction, Func<Task> step, CancellationToken ct)
    {
        try
        {
            await step().ConfigureAwait(false);
        }
        catch (EngineException e) when (!ct.IsCancellationRequested)
        {
            throw Fail(instruction, e.Message, e);
        }
        catch (LayerTool.Dockerfile.Shell.ShellExpansionException e)
        {
            // A word that cannot be expanded (a required variable unset, substitutions nested too deep) names its line.
            throw Fail(instruction, e.Message, e);
        }
    }

    private void BeginStep(Instruction instruction)
    {
        _step++;
        _log.Line($"Step {_step}/{_totalSteps} : {instruction.Original.Trim()}");
    }

    private async Task FromAsync(StageState state, CancellationToken ct)
    {
        var node = state.Stage.From;
        BeginStep(node);
        var reference = ExpandMeta(node.BaseName);
        if (reference.Length == 0) throw Fail(node, "base name (" + node.BaseName + ") should not be blank");
        var stageRef = FindStage(reference, state.Stage.Index);
        if (stageRef is not null && string.Equals(stageRef.Name, reference, StringComparison.OrdinalIgnoreCase))
        {
            var prior = _finishedStages[stageRef.Index];
            state.ImageId = prior.ImageId;
            state.BaseImageId = prior.ImageId;
            state.Config = prior.Config;
            state.RootBase = prior.RootBase;
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
            state.RootBase = (reference, image);
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
                Instruction parsed;
                try
                {
                    parsed = OnbuildTriggers.Parse(trigger, _fileName);
                }
                catch (DockerfileException e)
                {
                    throw Fail(node, e.Detail, e);
                }
                // A trigger runs as part of the FROM step: its errors name the FROM line.
                var located = parsed with { Node = parsed.Node with { Range = node.Range, Position = node.Position } };
                await ExecuteAsync(state, located, ct).ConfigureAwait(false);
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

    private Task ExecuteAsync(StageState state, Instruction instruction, CancellationToken ct)
    {
        if (instruction.Node.Heredocs.Count > 0) throw Fail(instruction, "heredocs need BuildKit; the classic builder (and layertool) does not support them");
        return instruction switch
        {
            RunInstruction i => RunAsync(state, i, ct),
            FileInstruction i => CopyAsync(state, i, ct),
            EnvInstruction i => EnvAsync(state, i, ct),
            ArgInstruction i => ArgAsync(state, i, ct),
            LabelInstruction i => LabelAsync(state, i, ct),
            ExposeInstruction i => ExposeAsync(state, i, ct),
            VolumeInstruction i => VolumeAsync(state, i, ct),
            UserInstruction i => UserAsync(state, i, ct),
            WorkdirInstruction i => WorkdirAsync(state, i, ct),
            CmdInstruction i => CmdAsync(state, i, ct),
            EntrypointInstruction i => EntrypointAsync(state, i, ct),
            HealthcheckInstruction i => HealthcheckAsync(state, i, ct),
            StopSignalInstruction i => StopSignalAsync(state, i, ct),
            ShellInstruction i => ShellAsync(state, i, ct),
            OnbuildInstruction i => OnbuildAsync(state, i, ct),
            MaintainerInstruction i => MaintainerAsync(state, i, ct),
            TagInstruction i => TagAsync(state, i, ct),
            CompressInstruction i => CompressStepAsync(state, i, ct),
            FromInstruction => throw Fail(instruction, "FROM cannot appear here"),
            _ => throw Fail(instruction, $"unknown instruction: {instruction.Node.KeywordAsWritten}"),
        };
    }

    /// <summary>Variables a step's words see: the stage's ARGs with values, then ENV over them.</summary>
    private static VariableLookup Lookup(StageState state)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in state.Args) if (v is not null) values[k] = v;
        foreach (var e in state.Config.Env ?? [])
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

    private BuildException Fail(Instruction instruction, string message, Exception? inner = null)
    {
        var text = $"{_fileName}:{instruction.Range.StartLine}: {message}";
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

    private Task<string> CreateContainerAsync(string image, ContainerConfig config, CancellationToken ct) => CreateContainerAsync(image, config, null, ct);

    private async Task<string> CreateContainerAsync(string image, ContainerConfig config, IReadOnlyList<string>? tmpfs, CancellationToken ct)
    {
        var name = NextContainerName();
        _liveContainers[name] = name;
        var id = await _engine.CreateContainerAsync(new ContainerSpec(image, config, _options.NetworkMode, name) { Tmpfs = tmpfs ?? [] }, ct).ConfigureAwait(false);
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
    private async Task CommitMetadataAsync(StageState state, Instruction node, string text, ContainerConfig newConfig, CancellationToken ct)
    {
        var key = StepKey(state, text);
        if (await TryCacheAsync(state, key, newConfig, ct).ConfigureAwait(false)) return;
        var nop = state.Shell.Concat(["#(nop) ", text]).ToList();
        await CommitStepAsync(state, node, key, newConfig, nop, prepare: null, tmpfs: null, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Creates the step's container, lets <paramref name="prepare"/> change it, commits with the full config and
    /// removes it. <paramref name="tmpfs"/>: paths declared as (never mounted) tmpfs in the container, so that the
    /// engine creates no volume there.
    /// </summary>
    private async Task CommitStepAsync(StageState state, Instruction node, string? key, ContainerConfig newConfig, IReadOnlyList<string> command,
        Func<string, Task>? prepare, IReadOnlyList<string>? tmpfs, CancellationToken ct)
    {
        var (containerConfig, commitConfig) = StepConfigs(newConfig, command);
        var parent = await ParentImageAsync(state, ct).ConfigureAwait(false);
        var id = await CreateContainerAsync(parent, containerConfig, tmpfs, ct).ConfigureAwait(false);
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
