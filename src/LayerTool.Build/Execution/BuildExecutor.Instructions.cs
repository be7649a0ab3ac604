using LayerTool.Image.Squash;
using LayerTool.Image;
using System.Globalization;
using System.Text;
using LayerTool.Build.Cache;
using LayerTool.Docker;
using LayerTool.Docker.Squash;
using LayerTool.Dockerfile;
using LayerTool.Dockerfile.Instructions;
using LayerTool.Dockerfile.Model;

namespace LayerTool.Build.Execution;

public sealed partial class BuildExecutor
{
    private async Task RunAsync(StageState state, RunInstruction node, CancellationToken ct)
    {
        if (node.Mounts.Count > 0) throw Fail(node, $"RUN --mount={node.Mounts[0]} needs BuildKit; the classic builder does not support it");
        if (node.Network is not null) throw Fail(node, $"RUN --network={node.Network} needs BuildKit; the classic builder does not support it");
        if (node.Security is not null) throw Fail(node, $"RUN --security={node.Security} needs BuildKit; the classic builder does not support it");
        if (state.ImageId is null) throw Fail(node, "RUN needs a base image with a shell; this stage is FROM scratch with nothing in it");
        var args = RunArgs(state);
        IReadOnlyList<string> command;
        string text;
        var isJson = node.Command.IsJson;
        if (isJson)
        {
            command = node.Command.Arguments;
            text = "[" + string.Join(' ', command) + "]";
        }
        else
        {
            text = node.Command.Arguments.Count > 0 ? node.Command.Arguments[0] : "";
            command = [.. state.Shell, text];
        }
        // Build args reach the command (either form) through the container's Env, as with docker. The image
        // must not keep them, and its history shows them as docker's does: `|N K=V ... command`, with the
        // predefined proxy args left out unless an ARG declares them. An engine that cannot take the
        // replacement image (containerd image store) gets them through the shell instead, shell form only.
        if (args.Count > 0 && !(_argsInEnv ??= await _engine.CanReplaceStepConfigAsync(ct).ConfigureAwait(false)))
        {
            var shellKey = StepKey(state, "RUN " + (isJson ? "json:" : "shell:") + text);
            if (!isJson) command = [.. state.Shell, "export " + string.Join(' ', args.Select(a => a.Key + "=" + ShellQuote(a.Value))) + "; " + text];
            await RunContainerAsync(state, node, shellKey, command, [], null, isJson ? null : text, ct).ConfigureAwait(false);
            return;
        }
        var recorded = args.Where(a => state.Args.ContainsKey(a.Key) || !BuiltinArgs.Contains(a.Key))
            .Select(a => a.Key + "=" + a.Value).Order(StringComparer.Ordinal).ToList();
        IReadOnlyList<string> createdBy = [$"|{recorded.Count}", .. recorded, .. command];
        var key = StepKey(state, "RUN " + (isJson ? "json:" : "shell:") + text, args.Count == 0 ? null : "args-in-env");
        await RunContainerAsync(state, node, key, command, args, args.Count == 0 ? null : createdBy, isJson ? null : text, ct).ConfigureAwait(false);
    }

    private static string ShellQuote(string value) => "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>
    /// Runs a RUN step's container (unless the cache has the step) with <paramref name="envArgs"/> added to its
    /// Env, commits, and when <paramref name="createdBy"/> is given replaces the commit by the image without
    /// those args (see <see cref="IDockerEngine.ReplaceStepConfigAsync"/>). <paramref name="shellText"/> is the
    /// shell-form command as written (null: exec form), for the error message.
    /// </summary>
    private async Task RunContainerAsync(StageState state, RunInstruction node, string key, IReadOnlyList<string> command,
        IReadOnlyList<KeyValuePair<string, string>> envArgs, IReadOnlyList<string>? createdBy, string? shellText, CancellationToken ct)
    {
        if (await TryCacheAsync(state, key, state.Config, ct).ConfigureAwait(false)) return;
        var (containerConfig, commitConfig) = StepConfigs(state.Config, command);
        containerConfig = containerConfig with { Env = [.. containerConfig.Env ?? [], .. envArgs.Select(a => a.Key + "=" + a.Value)] };
        var id = await CreateContainerAsync(state.ImageId!, containerConfig, ct).ConfigureAwait(false);
        _log.Line($" ---> Running in {BuildLog.ShortId(id)}");
        try
        {
            var decoder = Encoding.UTF8.GetDecoder();
            var output = await _engine.AttachAsync(id, bytes =>
            {
                if (_log.Quiet) return;
                var chars = new char[Encoding.UTF8.GetMaxCharCount(bytes.Length)];
                var n = decoder.GetChars(bytes.Span, chars, flush: false);
                _log.Write(new string(chars, 0, n));
            }, ct).ConfigureAwait(false);
            await _engine.StartContainerAsync(id, ct).ConfigureAwait(false);
            var exit = await _engine.WaitContainerAsync(id, ct).ConfigureAwait(false);
            await output.WaitAsync(TimeSpan.FromSeconds(30), ct).ConfigureAwait(false);
            if (exit != 0)
            {
                var shown = shellText is null ? "[" + string.Join(' ', command) + "]" : string.Join(' ', state.Shell) + " " + shellText;
                throw Fail(node, $"The command '{shown}' returned a non-zero code: {exit}");
            }
            var committed = await _engine.CommitAsync(id, commitConfig, state.Maintainer, ct).ConfigureAwait(false);
            // The commit merged the container's Env (the build args) into the image: replace it by the
            // image docker's builder commits, same layers and parent, config exactly commitConfig.
            if (createdBy is not null) committed = await _engine.ReplaceStepConfigAsync(committed, state.ImageId, commitConfig.Env ?? [], createdBy, ct).ConfigureAwait(false);
            state.ImageId = committed;
            _cache.Store(key, state.ImageId);
        }
        catch (EngineException e) when (!ct.IsCancellationRequested)
        {
            throw Fail(node, e.Message, e);
        }
        finally
        {
            if (!ct.IsCancellationRequested)
            {
                await RemoveContainerAsync(id, CancellationToken.None).ConfigureAwait(false);
                _log.Line($"Removing intermediate container {BuildLog.ShortId(id)}");
            }
        }
        _log.Line($" ---> {BuildLog.ShortId(state.ImageId)}");
    }

    private Task EnvAsync(StageState state, EnvInstruction node, CancellationToken ct)
    {
        var lookup = Lookup(state);
        var config = state.Config;
        var parts = new List<string>();
        foreach (var pair in node.Variables)
        {
            var name = _expander.ExpandWord(pair.Key, lookup);
            var value = _expander.ExpandWord(pair.Value, lookup);
            config = config.WithEnv(name, value);
            parts.Add(name + "=" + value);
        }
        return CommitMetadataAsync(state, node, "ENV " + string.Join(' ', parts), config, ct);
    }

    private Task ArgAsync(StageState state, ArgInstruction node, CancellationToken ct)
    {
        var parts = new List<string>();
        foreach (var decl in node.Args)
        {
            var name = decl.Name;
            var value = decl.DefaultValue is null ? null : _expander.ExpandWord(decl.DefaultValue, Lookup(state));
            if (value is null && _metaArgs.TryGetValue(name, out var meta)) value = meta;
            if (_options.BuildArgs?.TryGetValue(name, out var given) == true)
            {
                value = given;
                _usedBuildArgs.Add(name);
            }
            state.Args[name] = value;
            parts.Add(value is null ? name : name + "=" + value);
        }
        return CommitMetadataAsync(state, node, "ARG " + string.Join(' ', parts), state.Config, ct);
    }

    private Task LabelAsync(StageState state, LabelInstruction node, CancellationToken ct)
    {
        var lookup = Lookup(state);
        var labels = new Dictionary<string, string>(state.Config.Labels ?? new Dictionary<string, string>(), StringComparer.Ordinal);
        var parts = new List<string>();
        foreach (var pair in node.Labels)
        {
            var name = _expander.ExpandWord(pair.Key, lookup);
            var value = _expander.ExpandWord(pair.Value, lookup);
            labels[name] = value;
            parts.Add(name + "=" + value);
        }
        return CommitMetadataAsync(state, node, "LABEL " + string.Join(' ', parts), state.Config with { Labels = labels }, ct);
    }

    private Task ExposeAsync(StageState state, ExposeInstruction node, CancellationToken ct)
    {
        var ports = new SortedSet<string>(state.Config.ExposedPorts ?? [], StringComparer.Ordinal);
        var added = new List<string>();
        foreach (var word in node.Ports)
        {
            foreach (var spec in _expander.ExpandWords(word, Lookup(state)))
            {
                var slash = spec.IndexOf('/', StringComparison.Ordinal);
                var proto = slash < 0 ? "tcp" : spec[(slash + 1)..].ToLowerInvariant();
                var range = slash < 0 ? spec : spec[..slash];
                var dash = range.IndexOf('-', StringComparison.Ordinal);
                if (!int.TryParse(dash < 0 ? range : range[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out var first))
                    throw Fail(node, $"invalid containerPort: {range}");
                var last = first;
                if (dash >= 0 && !int.TryParse(range[(dash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out last))
                    throw Fail(node, $"invalid containerPort: {range}");
                for (var p = first; p <= last; p++)
                {
                    ports.Add($"{p}/{proto}");
                    added.Add($"{p}/{proto}");
                }
            }
        }
        return CommitMetadataAsync(state, node, "EXPOSE " + string.Join(' ', added), state.Config with { ExposedPorts = [.. ports] }, ct);
    }

    private Task VolumeAsync(StageState state, VolumeInstruction node, CancellationToken ct)
    {
        var volumes = new SortedSet<string>(state.Config.Volumes ?? [], StringComparer.Ordinal);
        var added = new List<string>();
        foreach (var word in node.Paths)
        {
            var values = node.IsJson ? [Expand(state, word)] : _expander.ExpandWords(word, Lookup(state));
            foreach (var v in values)
            {
                if (v.Trim().Length == 0) throw Fail(node, "VOLUME specified can not be an empty string");
                volumes.Add(v);
                added.Add(v);
            }
        }
        if (added.Count == 0) throw Fail(node, "VOLUME requires at least one argument");
        return CommitMetadataAsync(state, node, "VOLUME [" + string.Join(' ', added) + "]", state.Config with { Volumes = [.. volumes] }, ct);
    }

    private Task UserAsync(StageState state, UserInstruction node, CancellationToken ct)
    {
        var user = Expand(state, SingleArgument(node, node.User));
        return CommitMetadataAsync(state, node, "USER " + user, state.Config with { User = user }, ct);
    }

    private async Task WorkdirAsync(StageState state, WorkdirInstruction node, CancellationToken ct)
    {
        var dir = Expand(state, SingleArgument(node, node.Path));
        var current = string.IsNullOrEmpty(state.Config.WorkingDir) ? "/" : state.Config.WorkingDir;
        var path = CleanAbsolute(dir.StartsWith('/') ? dir : current.TrimEnd('/') + "/" + dir);
        var newConfig = state.Config with { WorkingDir = path };
        var text = "WORKDIR " + path;
        var key = StepKey(state, text);
        if (await TryCacheAsync(state, key, newConfig, ct).ConfigureAwait(false)) return;
        var nop = state.Shell.Concat(["#(nop) ", text]).ToList();
        await CommitStepAsync(state, node, key, newConfig, nop,
            id => EnsureDirectoriesAsync(id, path, 0, 0, ct), tmpfs: null, ct).ConfigureAwait(false);
    }

    private Task CmdAsync(StageState state, CmdInstruction node, CancellationToken ct)
    {
        var cmd = CommandOf(state, node.Command);
        state.CmdSet = true;
        return CommitMetadataAsync(state, node, "CMD " + Render(cmd), state.Config with { Cmd = cmd }, ct);
    }

    private Task EntrypointAsync(StageState state, EntrypointInstruction node, CancellationToken ct)
    {
        var ep = CommandOf(state, node.Command);
        var config = state.Config with { Entrypoint = ep };
        // ENTRYPOINT resets a CMD inherited from the base (a CMD of this stage stays).
        if (!state.CmdSet) config = config with { Cmd = null };
        return CommitMetadataAsync(state, node, "ENTRYPOINT " + Render(ep), config, ct);
    }

    private static IReadOnlyList<string> CommandOf(StageState state, CommandLine command)
    {
        if (command.IsJson) return command.Arguments;
        var line = command.Arguments.Count > 0 ? command.Arguments[0] : "";
        return [.. state.Shell, line];
    }

    private static string Render(IReadOnlyList<string> command) => "[" + string.Join(' ', command.Select(c => "\"" + c + "\"")) + "]";

    private Task HealthcheckAsync(StageState state, HealthcheckInstruction node, CancellationToken ct)
    {
        // The classic builder knows no --start-interval (BuildKit's).
        if (!node.IsNone && node.StartInterval is not null) throw Fail(node, "unknown flag: --start-interval");
        var health = node.IsNone
            ? new HealthConfig { Test = ["NONE"] }
            : new HealthConfig { Test = node.Test, Interval = node.Interval, Timeout = node.Timeout, StartPeriod = node.StartPeriod, Retries = node.Retries };
        return CommitMetadataAsync(state, node, "HEALTHCHECK &{" + string.Join(' ', health.Test!) + "}", state.Config with { Healthcheck = health }, ct);
    }

    private Task StopSignalAsync(StageState state, StopSignalInstruction node, CancellationToken ct)
    {
        var signal = Expand(state, SingleArgument(node, node.Signal));
        return CommitMetadataAsync(state, node, "STOPSIGNAL " + signal, state.Config with { StopSignal = signal }, ct);
    }

    private Task ShellAsync(StageState state, ShellInstruction node, CancellationToken ct) =>
        CommitMetadataAsync(state, node, "SHELL " + Render(node.Shell), state.Config with { Shell = node.Shell }, ct);

    private Task OnbuildAsync(StageState state, OnbuildInstruction node, CancellationToken ct)
    {
        var expression = node.Expression.Trim();
        var list = (state.Config.OnBuild ?? []).Append(expression).ToList();
        return CommitMetadataAsync(state, node, "ONBUILD " + expression, state.Config with { OnBuild = list }, ct);
    }

    private Task MaintainerAsync(StageState state, MaintainerInstruction node, CancellationToken ct)
    {
        state.Maintainer = SingleArgument(node, node.Maintainer);
        return CommitMetadataAsync(state, node, "MAINTAINER " + state.Maintainer, state.Config, ct);
    }

    private async Task TagAsync(StageState state, TagInstruction node, CancellationToken ct)
    {
        var image = state.ImageId ?? throw Fail(node, "TAG needs an image: nothing has been built in this stage yet");
        foreach (var word in node.References)
        {
            foreach (var name in _expander.ExpandWords(word, Lookup(state)))
            {
                // Words with variables are checked here, after expansion (the others were when the file was read).
                if (InstructionParser.CheckTagReference(name) is { } why) throw Fail(node, why);
                try
                {
                    await _engine.TagImageAsync(image, name, ct).ConfigureAwait(false);
                }
                catch (EngineException e)
                {
                    throw Fail(node, $"cannot tag {BuildLog.ShortId(image)} as {name}: {e.Message}", e);
                }
                _tagged[ImageReferenceSyntax.Normalize(name)] = image;
                _taggedImages.Add(new TaggedImage(name, image, node.Range.StartLine));
                _log.Line($" ---> Tagged {BuildLog.ShortId(image)} as {name}");
            }
        }
    }

    private async Task CompressStepAsync(StageState state, CompressInstruction node, CancellationToken ct)
    {
        CompressBase resolved;
        try
        {
            resolved = _model.ResolveCompressBase(state.Stage, node, node.Base is null ? null : Expand(state, node.Base));
        }
        catch (DockerfileException e)
        {
            throw Fail(node, e.Detail, e);
        }
        var baseId = resolved.Kind switch
        {
            CompressBaseKind.StageFrom => state.BaseImageId,
            CompressBaseKind.Scratch => null,
            CompressBaseKind.Stage when _finishedStages.TryGetValue(resolved.Stage!.Index, out var prior) => prior.ImageId,
            CompressBaseKind.Tag when _tagged.TryGetValue(resolved.Value, out var taggedId) => taggedId,
            _ => (await _engine.InspectImageAsync(resolved.Value, ct).ConfigureAwait(false)
                  ?? throw Fail(node, $"COMPRESS base {resolved.Value} is neither a stage, a TAG of this build nor an image the engine has")).Id,
        };
        await CompressAsync(state, baseId, node, "COMPRESS", ct).ConfigureAwait(false);
    }

    private async Task<StageState> CompressAsync(StageState state, string? baseId, Instruction node, string what, CancellationToken ct)
    {
        if (_squash is null) throw Fail(node, $"{what} needs the squash engine, which this build of layertool does not have");
        var image = state.ImageId ?? throw Fail(node, $"{what} needs an image: nothing has been built in this stage yet");
        if (what == "--squash") _log.Line($"Squashing onto {(baseId is null ? "scratch" : BuildLog.ShortId(baseId))}");
        var key = BuildCache.Key("compress", image, baseId ?? "scratch");
        if (!state.CacheBusted && _cache.Lookup(key) is { } hit && await _engine.InspectImageAsync(hit, ct).ConfigureAwait(false) is { } cached)
        {
            _log.Line(" ---> Using cache");
            _log.Line($" ---> {BuildLog.ShortId(cached.Id)}");
            state.ImageId = cached.Id;
            state.Config = cached.Config with { Shell = state.Config.Shell, OnBuild = state.Config.OnBuild };
            _cachedSteps++;
            return state;
        }
        SquashResult result;
        try
        {
            result = await _squash.SquashAsync(SquashRequest.OnEngine(image, baseId) with { Message = $"layertool COMPRESS onto {baseId ?? "scratch"}" }, null, ct).ConfigureAwait(false);
        }
        catch (EngineException e)
        {
            throw Fail(node, $"{what} failed: {e.Message}", e);
        }
        _cache.Store(key, result.ImageId);
        _compressions.Add(new CompressedImage(result.ImageId, baseId, result.LayersBefore, result.LayersAfter, result.BytesBefore, result.BytesAfter, node.Range.StartLine));
        _log.Line($" ---> Compressed {result.LayersBefore} layers ({result.BytesBefore} bytes) into {result.LayersAfter} ({result.BytesAfter} bytes)");
        _log.Line($" ---> {BuildLog.ShortId(result.ImageId)}");
        state.ImageId = result.ImageId;
        // The squash records its base in labels: continue from the config the result really has.
        if (await _engine.InspectImageAsync(result.ImageId, ct).ConfigureAwait(false) is { } squashed)
            state.Config = squashed.Config with { Shell = state.Config.Shell, OnBuild = state.Config.OnBuild };
        return state;
    }

    private string SingleArgument(Instruction node, string value)
    {
        if (value.Trim().Length == 0) throw Fail(node, $"{node.Keyword} requires exactly one argument");
        return value.Trim();
    }

    internal static string CleanAbsolute(string path)
    {
        var parts = new List<string>();
        foreach (var p in path.Split('/'))
        {
            if (p is "" or ".") continue;
            if (p == "..") { if (parts.Count > 0) parts.RemoveAt(parts.Count - 1); continue; }
            parts.Add(p);
        }
        return "/" + string.Join('/', parts);
    }
}
