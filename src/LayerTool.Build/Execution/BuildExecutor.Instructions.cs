using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using LayerTool.Build.Cache;
using LayerTool.Build.Engine;
using LayerTool.Build.Squash;
using LayerTool.Dockerfile.Syntax;

namespace LayerTool.Build.Execution;

public sealed partial class BuildExecutor
{
    [GeneratedRegex(@"^\s*ONBUILD\s*", RegexOptions.IgnoreCase)]
    private static partial Regex OnbuildPrefix();

    private async Task RunAsync(StageState state, InstructionNode node, CancellationToken ct)
    {
        foreach (var f in node.Flags) throw Fail(node, $"RUN {f.Text} needs BuildKit; the classic builder does not support it");
        if (state.ImageId is null) throw Fail(node, "RUN needs a base image with a shell; this stage is FROM scratch with nothing in it");
        var args = RunArgs(state);
        IReadOnlyList<string> command;
        string text;
        if (node.IsJson)
        {
            command = [.. node.Arguments.Select(a => a.Text)];
            text = "[" + string.Join(' ', command) + "]";
        }
        else
        {
            var line = node.Arguments.Count > 0 ? node.Arguments[0].Text : "";
            text = line;
            // Build args reach the command through the shell, never through the container's Env: the
            // commit endpoint would merge that Env into the image.
            if (args.Count > 0)
                line = "export " + string.Join(' ', args.Select(a => a.Key + "=" + ShellQuote(a.Value))) + "; " + line;
            command = [.. state.Shell, line];
        }
        var key = StepKey(state, "RUN " + (node.IsJson ? "json:" : "shell:") + text);
        if (await TryCacheAsync(state, key, state.Config, ct).ConfigureAwait(false)) return;

        var (containerConfig, commitConfig) = StepConfigs(state.Config, command);
        var id = await CreateContainerAsync(state.ImageId, containerConfig, ct).ConfigureAwait(false);
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
                var shown = node.IsJson ? "[" + string.Join(' ', command) + "]" : string.Join(' ', state.Shell) + " " + text;
                throw Fail(node, $"The command '{shown}' returned a non-zero code: {exit}");
            }
            state.ImageId = await _engine.CommitAsync(id, commitConfig, state.Maintainer, ct).ConfigureAwait(false);
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

    private static string ShellQuote(string value) => "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private Task EnvAsync(StageState state, InstructionNode node, CancellationToken ct)
    {
        if (node.Pairs.Count == 0) throw Fail(node, "ENV requires at least one argument");
        var lookup = Lookup(state);
        var config = state.Config;
        var parts = new List<string>();
        foreach (var pair in node.Pairs)
        {
            var name = _expander.ExpandWord(pair.Key, lookup);
            var value = _expander.ExpandWord(pair.Value, lookup);
            config = config.WithEnv(name, value);
            parts.Add(name + "=" + value);
        }
        return CommitMetadataAsync(state, node, "ENV " + string.Join(' ', parts), config, ct);
    }

    private Task ArgAsync(StageState state, InstructionNode node, CancellationToken ct)
    {
        if (node.Arguments.Count == 0) throw Fail(node, "ARG requires at least one argument");
        var parts = new List<string>();
        foreach (var word in node.Arguments)
        {
            var (name, value) = ParseArgWord(word.Text, Lookup(state));
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

    private Task LabelAsync(StageState state, InstructionNode node, CancellationToken ct)
    {
        if (node.Pairs.Count == 0) throw Fail(node, "LABEL requires at least one argument");
        var lookup = Lookup(state);
        var labels = new Dictionary<string, string>(state.Config.Labels, StringComparer.Ordinal);
        var parts = new List<string>();
        foreach (var pair in node.Pairs)
        {
            var name = _expander.ExpandWord(pair.Key, lookup);
            var value = _expander.ExpandWord(pair.Value, lookup);
            labels[name] = value;
            parts.Add(name + "=" + value);
        }
        return CommitMetadataAsync(state, node, "LABEL " + string.Join(' ', parts), state.Config with { Labels = labels }, ct);
    }

    private Task ExposeAsync(StageState state, InstructionNode node, CancellationToken ct)
    {
        if (node.Arguments.Count == 0) throw Fail(node, "EXPOSE requires at least one argument");
        var ports = new SortedSet<string>(state.Config.ExposedPorts, StringComparer.Ordinal);
        var added = new List<string>();
        foreach (var word in node.Arguments)
        {
            foreach (var spec in _expander.ExpandWords(word.Text, Lookup(state)))
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

    private Task VolumeAsync(StageState state, InstructionNode node, CancellationToken ct)
    {
        var volumes = new SortedSet<string>(state.Config.Volumes, StringComparer.Ordinal);
        var added = new List<string>();
        foreach (var word in node.Arguments)
        {
            var values = node.IsJson ? [Expand(state, word.Text)] : _expander.ExpandWords(word.Text, Lookup(state));
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

    private Task UserAsync(StageState state, InstructionNode node, CancellationToken ct)
    {
        var user = Expand(state, SingleArgument(node));
        return CommitMetadataAsync(state, node, "USER " + user, state.Config with { User = user }, ct);
    }

    private async Task WorkdirAsync(StageState state, InstructionNode node, CancellationToken ct)
    {
        var dir = Expand(state, SingleArgument(node));
        var current = state.Config.WorkingDir.Length == 0 ? "/" : state.Config.WorkingDir;
        var path = CleanAbsolute(dir.StartsWith('/') ? dir : current.TrimEnd('/') + "/" + dir);
        var newConfig = state.Config with { WorkingDir = path };
        var text = "WORKDIR " + path;
        var key = StepKey(state, text);
        if (await TryCacheAsync(state, key, newConfig, ct).ConfigureAwait(false)) return;
        var nop = state.Shell.Concat(["#(nop) ", text]).ToList();
        await CommitStepAsync(state, node, key, newConfig, nop,
            id => EnsureDirectoriesAsync(id, path, 0, 0, ct), ct).ConfigureAwait(false);
    }

    private Task CmdAsync(StageState state, InstructionNode node, CancellationToken ct)
    {
        var cmd = CommandOf(state, node);
        state.CmdSet = true;
        return CommitMetadataAsync(state, node, "CMD " + Render(cmd), state.Config with { Cmd = cmd }, ct);
    }

    private Task EntrypointAsync(StageState state, InstructionNode node, CancellationToken ct)
    {
        var ep = CommandOf(state, node);
        var config = state.Config with { Entrypoint = ep };
        // ENTRYPOINT resets a CMD inherited from the base (a CMD of this stage stays).
        if (!state.CmdSet) config = config with { Cmd = null };
        return CommitMetadataAsync(state, node, "ENTRYPOINT " + Render(ep), config, ct);
    }

    private static IReadOnlyList<string> CommandOf(StageState state, InstructionNode node)
    {
        if (node.IsJson) return [.. node.Arguments.Select(a => a.Text)];
        var line = node.Arguments.Count > 0 ? node.Arguments[0].Text : "";
        return [.. state.Shell, line];
    }

    private static string Render(IReadOnlyList<string> command) => "[" + string.Join(' ', command.Select(c => "\"" + c + "\"")) + "]";

    private Task HealthcheckAsync(StageState state, InstructionNode node, CancellationToken ct)
    {
        if (node.Arguments.Count == 0) throw Fail(node, "HEALTHCHECK requires an argument");
        var type = node.Arguments[0].Text.ToUpperInvariant();
        HealthConfig health;
        if (type == "NONE")
        {
            if (node.Arguments.Count > 1 || node.Flags.Count > 0) throw Fail(node, "HEALTHCHECK NONE takes no arguments");
            health = new HealthConfig(["NONE"], 0, 0, 0, 0);
        }
        else if (type == "CMD")
        {
            var rest = node.Arguments.Skip(1).Select(a => a.Text).ToList();
            if (rest.Count == 0) throw Fail(node, "missing command after HEALTHCHECK CMD");
            IReadOnlyList<string> test = node.IsJson ? ["CMD", .. rest] : ["CMD-SHELL", rest[0]];
            long interval = 0, timeout = 0, start = 0;
            var retries = 0;
            foreach (var flag in node.Flags)
            {
                var eq = flag.Text.IndexOf('=', StringComparison.Ordinal);
                var name = eq < 0 ? flag.Text : flag.Text[..eq];
                var value = eq < 0 ? "" : flag.Text[(eq + 1)..];
                try
                {
                    switch (name)
                    {
                        case "--interval": interval = GoDuration.ParseNanoseconds(value); break;
                        case "--timeout": timeout = GoDuration.ParseNanoseconds(value); break;
                        case "--start-period": start = GoDuration.ParseNanoseconds(value); break;
                        case "--retries": retries = int.Parse(value, CultureInfo.InvariantCulture); break;
                        default: throw Fail(node, $"unknown flag: {name}");
                    }
                }
                catch (FormatException e)
                {
                    throw Fail(node, e.Message, e);
                }
            }
            health = new HealthConfig(test, interval, timeout, start, retries);
        }
        else throw Fail(node, $"unknown type for HEALTHCHECK: {type}");
        return CommitMetadataAsync(state, node, "HEALTHCHECK &{" + string.Join(' ', health.Test!) + "}", state.Config with { Healthcheck = health }, ct);
    }

    private Task StopSignalAsync(StageState state, InstructionNode node, CancellationToken ct)
    {
        var signal = Expand(state, SingleArgument(node));
        return CommitMetadataAsync(state, node, "STOPSIGNAL " + signal, state.Config with { StopSignal = signal }, ct);
    }

    private Task ShellAsync(StageState state, InstructionNode node, CancellationToken ct)
    {
        if (!node.IsJson || node.Arguments.Count == 0) throw Fail(node, "SHELL requires the arguments to be in JSON form");
        IReadOnlyList<string> shell = [.. node.Arguments.Select(a => a.Text)];
        return CommitMetadataAsync(state, node, "SHELL " + Render(shell), state.Config with { Shell = shell }, ct);
    }

    private Task OnbuildAsync(StageState state, InstructionNode node, CancellationToken ct)
    {
        var trigger = node.Trigger ?? throw Fail(node, "ONBUILD requires at least one argument");
        if (trigger.Keyword is Keywords.Onbuild) throw Fail(node, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
        if (trigger.Keyword is Keywords.From or Keywords.Maintainer) throw Fail(node, $"{trigger.Keyword} isn't allowed as an ONBUILD trigger");
        var expression = OnbuildPrefix().Replace(node.Original, "", 1).Trim();
        var list = (state.Config.OnBuild ?? []).Append(expression).ToList();
        return CommitMetadataAsync(state, node, "ONBUILD " + expression, state.Config with { OnBuild = list }, ct);
    }

    private Task MaintainerAsync(StageState state, InstructionNode node, CancellationToken ct)
    {
        state.Maintainer = SingleArgument(node);
        return CommitMetadataAsync(state, node, "MAINTAINER " + state.Maintainer, state.Config, ct);
    }

    private async Task TagAsync(StageState state, InstructionNode node, CancellationToken ct)
    {
        if (node.Arguments.Count == 0) throw Fail(node, "TAG requires at least one image name");
        var image = state.ImageId ?? throw Fail(node, "TAG needs an image: nothing has been built in this stage yet");
        foreach (var word in node.Arguments)
        {
            foreach (var name in _expander.ExpandWords(word.Text, Lookup(state)))
            {
                try
                {
                    await _engine.TagImageAsync(image, name, ct).ConfigureAwait(false);
                }
                catch (EngineException e)
                {
                    throw Fail(node, $"cannot tag {BuildLog.ShortId(image)} as {name}: {e.Message}", e);
                }
                _tagged[name] = image;
                _taggedImages.Add(new TaggedImage(name, image, node.Range.StartLine));
                _log.Line($" ---> Tagged {BuildLog.ShortId(image)} as {name}");
            }
        }
    }

    private async Task CompressStepAsync(StageState state, InstructionNode node, CancellationToken ct)
    {
        if (node.Arguments.Count > 1) throw Fail(node, "COMPRESS takes at most one base");
        string? baseId;
        if (node.Arguments.Count == 0) baseId = state.BaseImageId;
        else
        {
            var name = Expand(state, node.Arguments[0].Text);
            var stage = FindStage(name, state.Stage.Index);
            if (name.Equals("scratch", StringComparison.OrdinalIgnoreCase)) baseId = null;
            else if (stage is not null && _finishedStages.TryGetValue(stage.Index, out var prior)) baseId = prior.ImageId;
            else if (_tagged.TryGetValue(name, out var taggedId)) baseId = taggedId;
            else
            {
                var image = await _engine.InspectImageAsync(name, ct).ConfigureAwait(false)
                    ?? throw Fail(node, $"COMPRESS base {name} is neither a stage, a TAG of this build nor an image the engine has");
                baseId = image.Id;
            }
        }
        await CompressAsync(state, baseId, node, "COMPRESS", ct).ConfigureAwait(false);
    }

    private async Task<StageState> CompressAsync(StageState state, string? baseId, InstructionNode node, string what, CancellationToken ct)
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
            result = await _squash.SquashAsync(new SquashRequest(image, baseId, [], $"layertool COMPRESS onto {baseId ?? "scratch"}"), null, ct).ConfigureAwait(false);
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

    private string SingleArgument(InstructionNode node)
    {
        if (node.Arguments.Count == 0 || node.Arguments[0].Text.Trim().Length == 0) throw Fail(node, $"{node.Keyword} requires exactly one argument");
        return node.Arguments[0].Text.Trim();
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
