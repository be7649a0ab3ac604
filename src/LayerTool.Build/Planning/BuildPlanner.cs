using System.Globalization;
using System.Security.Cryptography;
using LayerTool.Dockerfile;
using LayerTool.Dockerfile.Instructions;
using LayerTool.Dockerfile.Model;
using LayerTool.Dockerfile.Shell;
using Stage = LayerTool.Dockerfile.Model.Stage;

namespace LayerTool.Build.Planning;

/// <summary>
/// Compiles an extended Dockerfile (TAG, COMPRESS, <c>--squash</c>) into standard builds with squashes between
/// them. Pure: no engine, no file system. The rules are in docs/design/build-planner.md.
/// </summary>
public static class BuildPlanner
{
    /// <summary>Repository prefix of every temporary tag a plan uses: <c>layertool-plan-&lt;build id&gt;-&lt;step&gt;:tmp</c>.</summary>
    public const string TemporaryRepositoryPrefix = "layertool-plan-";

    /// <summary>
    /// Plans the build of <paramref name="dockerfileText"/> with <paramref name="options"/> (target, build args,
    /// tags, labels, network, no-cache, --squash; the context and progress fields are not read). Throws
    /// <see cref="BuildException"/> (<c>Dockerfile:line: ...</c>) when the file cannot be planned.
    /// </summary>
    /// <param name="dockerfileText">The Dockerfile as read.</param>
    /// <param name="options">The build options.</param>
    /// <param name="fileName">The Dockerfile's name, for messages.</param>
    /// <param name="buildId">Names the temporary tags (lower-case letters and digits); null: a random one.</param>
    public static BuildPlan Plan(string dockerfileText, BuildOptions options, string fileName = "Dockerfile", string? buildId = null)
    {
        ArgumentNullException.ThrowIfNull(dockerfileText);
        ArgumentNullException.ThrowIfNull(options);
        buildId ??= Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
        if (buildId.Length == 0 || !buildId.All(c => char.IsAsciiDigit(c) || char.IsAsciiLetterLower(c)))
            throw new ArgumentException("a build ID is lower-case letters and digits", nameof(buildId));
        DockerfileModel model;
        try
        {
            model = DockerfileModel.Parse(dockerfileText, fileName);
        }
        catch (DockerfileException e)
        {
            throw new BuildException($"{e.FileName}:{e.Line}: {e.Detail}", e);
        }
        return new PlanCompiler(model, dockerfileText, options, buildId).Compile();
    }

    /// <summary>The temporary tag of step <paramref name="step"/> of build <paramref name="buildId"/>.</summary>
    public static string TemporaryTag(string buildId, int step) =>
        $"{TemporaryRepositoryPrefix}{buildId}-{step.ToString(CultureInfo.InvariantCulture)}:tmp";
}

/// <summary>One compilation: the file, the options, and what each stage has become so far.</summary>
internal sealed class PlanCompiler
{
    private readonly DockerfileModel _model;
    private readonly string[] _lines;
    private readonly BuildOptions _options;
    private readonly string _buildId;
    private readonly ShellWordExpander _expander;
    private readonly IReadOnlyDictionary<string, string> _buildArgs;
    private readonly IReadOnlyDictionary<string, string> _labels;
    private readonly Dictionary<string, string> _meta = new(StringComparer.Ordinal);
    private readonly List<PlanStep> _steps = [];
    private readonly StageStatus[] _status;

    public PlanCompiler(DockerfileModel model, string text, BuildOptions options, string buildId)
    {
        _model = model;
        _lines = text.Split('\n');
        _options = options;
        _buildId = buildId;
        _expander = model.CreateExpander();
        _buildArgs = options.BuildArgs ?? new Dictionary<string, string>();
        _labels = options.Labels ?? new Dictionary<string, string>();
        _status = [.. model.Stages.Select(_ => new StageStatus())];
        foreach (var decl in model.MetaArgs.SelectMany(a => a.Args))
        {
            var value = _buildArgs.TryGetValue(decl.Name, out var given) ? given
                : decl.DefaultValue is null ? null : _expander.ExpandWord(decl.DefaultValue, MetaLookup());
            if (value is not null) _meta[decl.Name] = value;
            else _meta.Remove(decl.Name);
        }
    }

    private string File => _model.FileName;

    private IReadOnlyList<string> UserTags => _options.Tags ?? [];

    public BuildPlan Compile()
    {
        var target = FindTarget();
        var needed = NeededStages(target);
        foreach (var stage in _model.Stages.Where(s => needed.Contains(s.Index)))
            CompileStage(stage, stage.Index == target.Index);
        Finish(target);
        // A TAG no later build covered (none should be left: every stage compiled is built by a later build) runs alone.
        foreach (var replay in _replays) AddReplay(replay, null);
        return new BuildPlan(_buildId, File, target.DisplayName, [.. _steps], [.. UserTags], string.Join('\n', _lines));
    }

    // ---- stages --------------------------------------------------------------------------------------

    /// <summary>What a stage has become: built up to a COMPRESS (continued from an image), or finished as one image.</summary>
    private sealed class StageStatus
    {
        /// <summary>The stage goes on <c>FROM</c> this tag, after this line (the last COMPRESS done).</summary>
        public (string Tag, int Line)? Continuation { get; set; }

        /// <summary>The step whose output is the whole stage (set once later stages must use an image for it).</summary>
        public int? Result { get; set; }

        /// <summary>A build of the stage as it stands, for a COMPRESS onto it.</summary>
        public int? Materialized { get; set; }

        /// <summary>The last squash of the stage and whether its image holds ONBUILD triggers the continuation lacks.</summary>
        public int? LastSquash { get; set; }

        public bool TriggersWithheld { get; set; }

        /// <summary>The stage's last step is the plan's final one already.</summary>
        public bool FinalDone { get; set; }
    }

    private void CompileStage(Stage stage, bool isTarget)
    {
        var status = _status[stage.Index];
        var vars = new StageVariables(this);
        var onbuildSeen = false;
        for (var k = 0; k < stage.Instructions.Count; k++)
        {
            var instruction = stage.Instructions[k];
            var line = instruction.Range.StartLine;
            switch (instruction)
            {
                case ArgInstruction a:
                    vars.Declare(a);
                    break;
                case EnvInstruction e:
                    vars.Set(e);
                    break;
                case OnbuildInstruction:
                    onbuildSeen = true;
                    break;
                case TagInstruction t:
                {
                    var refs = TagReferences(t, vars);
                    var description = $"TAG {string.Join(' ', refs)} ({File}:{line})";
                    if (status.TriggersWithheld)
                    {
                        var built = AddBuild(stage, line, $"stage {stage.DisplayName} up to TAG ({File}:{line})", line, PlanOutput.Temporary, [], labels: false);
                        AddConfig(PlanStepKind.RestoreOnBuild, description, stage, line, PlanOutput.Tag, refs, PlanImage.FromStep(built), PlanImage.FromStep(status.LastSquash!.Value));
                    }
                    else if (_options.NoCache)
                    {
                        // Without the cache, a TAG build before the rest would run the TAG'd steps, and a later build
                        // of the whole stage would run them again (with other RUN results than the TAG'd image holds).
                        // So the TAG waits for the next build that runs these steps without the cache, and replays
                        // them from its fresh cache records right after it (BuildKit takes a step's newest record):
                        // each step runs once, the TAG'd image is the first layers of that build, and it costs one
                        // cached solve.
                        _replays.Add(new PendingReplay(stage, line, description, refs, Generate(stage, line)));
                    }
                    else
                    {
                        AddBuild(stage, line, description, line, PlanOutput.Tag, refs, labels: false);
                    }
                    break;
                }
                case CompressInstruction c:
                {
                    var (baseImage, baseName) = ResolveBase(stage, c, vars);
                    var input = AddBuild(stage, line, $"stage {stage.DisplayName} up to COMPRESS ({File}:{line})", line, PlanOutput.Temporary, [], labels: false);
                    if (status.TriggersWithheld)
                    {
                        input = AddConfig(PlanStepKind.RestoreOnBuild, $"ONBUILD triggers put back before COMPRESS ({File}:{line})", stage, line,
                            PlanOutput.Temporary, [], PlanImage.FromStep(input), PlanImage.FromStep(status.LastSquash!.Value));
                    }
                    var restEmpty = k == stage.Instructions.Count - 1;
                    var final = restEmpty && isTarget && !_options.Squash && _labels.Count == 0;
                    var squash = AddSquash($"COMPRESS onto {baseName} ({File}:{line})", stage, line, final ? PlanOutput.Final : PlanOutput.Temporary,
                        final ? UserTags : [], PlanImage.FromStep(input), baseImage, baseName);
                    status.LastSquash = squash;
                    if (restEmpty && (!isTarget || final))
                    {
                        // Nothing follows: the squashed image is the stage.
                        status.Result = squash;
                        status.FinalDone = final;
                        status.TriggersWithheld = false;
                        status.Continuation = null;
                        break;
                    }
                    var from = squash;
                    status.TriggersWithheld = onbuildSeen;
                    if (onbuildSeen)
                    {
                        from = AddConfig(PlanStepKind.ClearOnBuild, $"ONBUILD triggers cleared for the rest of the stage ({File}:{line})", stage, line,
                            PlanOutput.Temporary, [], PlanImage.FromStep(squash), null);
                    }
                    status.Continuation = (TagOf(from), line);
                    break;
                }
            }
        }

        if (!isTarget && status.Continuation is not null)
        {
            var built = AddBuild(stage, int.MaxValue, $"stage {stage.DisplayName} (continued)", null, PlanOutput.Temporary, [], labels: false);
            status.Result = status.TriggersWithheld
                ? AddConfig(PlanStepKind.RestoreOnBuild, $"ONBUILD triggers of stage {stage.DisplayName} put back", stage, null, PlanOutput.Temporary, [],
                    PlanImage.FromStep(built), PlanImage.FromStep(status.LastSquash!.Value))
                : built;
        }
    }

    /// <summary>The steps that give the final image: the target's continuation or whole build, then --squash.</summary>
    private void Finish(Stage target)
    {
        var status = _status[target.Index];
        if (status.FinalDone) return;
        var squash = _options.Squash;
        var output = squash ? PlanOutput.Temporary : PlanOutput.Final;
        var tags = squash ? [] : UserTags;
        int last;
        if (status.TriggersWithheld)
        {
            var built = AddBuild(target, int.MaxValue, $"stage {target.DisplayName}", null, PlanOutput.Temporary, [], labels: true);
            last = AddConfig(PlanStepKind.RestoreOnBuild, squash ? $"ONBUILD triggers of stage {target.DisplayName} put back" : "final image (ONBUILD triggers put back)",
                target, null, output, tags, PlanImage.FromStep(built), PlanImage.FromStep(status.LastSquash!.Value));
        }
        else
        {
            last = AddBuild(target, int.MaxValue, squash ? $"stage {target.DisplayName} before --squash" : $"final image (stage {target.DisplayName})",
                null, output, tags, labels: true);
        }
        if (squash)
        {
            var (baseImage, baseName) = StageFromBase(target);
            AddSquash($"--squash onto {baseName}", target, null, PlanOutput.Final, UserTags, PlanImage.FromStep(last), baseImage, baseName);
        }
    }

    private Stage FindTarget()
    {
        if (_options.Target is null) return _model.Stages[^1];
        var name = _options.Target.ToLowerInvariant();
        return _model.Stages.FirstOrDefault(s => s.Name == name)
            ?? throw new BuildException($"failed to reach build target {_options.Target} in {File}");
    }

    /// <summary>The target and, transitively, the stages its FROM, COPY --from and COMPRESS name (as the user wrote them).</summary>
    private HashSet<int> NeededStages(Stage target)
    {
        var needed = new HashSet<int>();
        var pending = new Stack<Stage>([target]);
        while (pending.Count > 0)
        {
            var stage = pending.Pop();
            if (!needed.Add(stage.Index)) continue;
            if (FromStage(stage) is { } from) pending.Push(from);
            foreach (var instruction in stage.Instructions)
            {
                if (instruction is CopyInstruction { From: { } source } && CopySourceStage(source, stage.Index) is { } copied)
                    pending.Push(copied);
                if (instruction is CompressInstruction { Base: { } b } && !b.Contains('$', StringComparison.Ordinal)
                    && _model.Stages.FirstOrDefault(s => s.Index < stage.Index && s.Name is not null && s.IsNamed(b)) is { } baseStage)
                    pending.Push(baseStage);
            }
        }
        return needed;
    }

    /// <summary>The earlier stage a FROM names (by name, after meta-ARG expansion), or null for an image.</summary>
    private Stage? FromStage(Stage stage)
    {
        var reference = ExpandMeta(stage.From.BaseName);
        return _model.Stages.FirstOrDefault(s => s.Index < stage.Index && s.Name is not null
            && string.Equals(s.Name, reference, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>The earlier stage a <c>--from</c> names (by name or index, after meta-ARG expansion), or null for an image.</summary>
    private Stage? CopySourceStage(string source, int before)
    {
        var reference = ExpandMeta(source);
        var byName = _model.Stages.FirstOrDefault(s => s.Index < before && s.Name is not null
            && string.Equals(s.Name, reference, StringComparison.OrdinalIgnoreCase));
        if (byName is not null) return byName;
        return int.TryParse(reference, NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i < before ? _model.Stages[i] : null;
    }

    // ---- COMPRESS bases -------------------------------------------------------------------------------

    private (PlanImage Image, string Name) ResolveBase(Stage stage, CompressInstruction compress, StageVariables vars)
    {
        var expanded = compress.Base is { } raw && raw.Contains('$', StringComparison.Ordinal) ? Expand(raw, vars.Lookup()) : compress.Base;
        CompressBase resolved;
        try
        {
            resolved = _model.ResolveCompressBase(stage, compress, expanded);
        }
        catch (DockerfileException e)
        {
            throw new BuildException($"{e.FileName}:{e.Line}: {e.Detail}", e);
        }
        return resolved.Kind switch
        {
            CompressBaseKind.StageFrom => StageFromBase(stage),
            CompressBaseKind.Scratch => (PlanImage.Scratch, "scratch"),
            CompressBaseKind.Stage => (StageImage(resolved.Stage!), $"stage {resolved.Stage!.DisplayName}"),
            CompressBaseKind.Tag => (PlanImage.Of(resolved.Value), resolved.Value),
            _ => (PlanImage.Of(resolved.Value), resolved.Value),
        };
    }

    /// <summary>The image a stage starts from: an earlier stage's image, scratch, or the FROM reference.</summary>
    private (PlanImage Image, string Name) StageFromBase(Stage stage)
    {
        if (FromStage(stage) is { } from) return (StageImage(from), $"stage {from.DisplayName}");
        var reference = ExpandMeta(stage.From.BaseName);
        return reference.Equals("scratch", StringComparison.OrdinalIgnoreCase)
            ? (PlanImage.Scratch, "scratch")
            : (PlanImage.Of(reference), reference);
    }

    /// <summary>The image a stage is ultimately based on: its FROM, followed through earlier stages; null for scratch.</summary>
    private string? RootBase(Stage stage)
    {
        while (FromStage(stage) is { } from) stage = from;
        var reference = ExpandMeta(stage.From.BaseName);
        return reference.Equals("scratch", StringComparison.OrdinalIgnoreCase) ? null : reference;
    }

    /// <summary>An earlier stage's whole image: its compressed result, or a build of it (the cache makes it a replay).</summary>
    private PlanImage StageImage(Stage stage)
    {
        var status = _status[stage.Index];
        if (status.Result is { } result) return PlanImage.FromStep(result);
        status.Materialized ??= AddBuild(stage, int.MaxValue, $"stage {stage.DisplayName} (a COMPRESS base)", null, PlanOutput.Temporary, [], labels: false);
        return PlanImage.FromStep(status.Materialized.Value);
    }

    // ---- steps ---------------------------------------------------------------------------------------

    private IReadOnlyList<string> Tags(PlanOutput output, IReadOnlyList<string> given) =>
        output == PlanOutput.Temporary ? [BuildPlanner.TemporaryTag(_buildId, _steps.Count)] : given;

    private string TagOf(int step) => _steps[step].Tags[0];

    private int AddBuild(Stage stage, int truncateAt, string description, int? line, PlanOutput output, IReadOnlyList<string> tags, bool labels)
    {
        var index = _steps.Count;
        var build = new StandardBuild(index, description, Generate(stage, truncateAt), stage.Name, _buildArgs, Tags(output, tags),
            labels ? _labels : new Dictionary<string, string>(), _options.NetworkMode, _options.NoCache)
        {
            RecordBaseOf = labels && _options.RecordBase && !BaseLabels.UserSets(_labels, string.Join('\n', _lines)) ? RootBase(stage) : null,
        };
        _steps.Add(new PlanBuild(index, description, stage.DisplayName, line, output, build));
        AddReplays(index, stage, truncateAt);
        return index;
    }

    /// <summary>A TAG under <c>--no-cache</c> waiting for the build that runs its steps (its Dockerfile made when it was met).</summary>
    private sealed record PendingReplay(Stage Stage, int Line, string Description, IReadOnlyList<string> References, string Dockerfile);

    private readonly List<PendingReplay> _replays = [];

    /// <summary>
    /// After build <paramref name="covering"/> (of <paramref name="stage"/> up to <paramref name="truncateAt"/>), the waiting
    /// TAGs whose steps it ran: the same stage past the TAG's line, or a stage it builds whole. Each becomes a cached build of
    /// the truncated stage, which replays those steps from the records just made.
    /// </summary>
    private void AddReplays(int covering, Stage stage, int truncateAt)
    {
        if (_replays.Count == 0) return;
        var needed = NeededNow(stage, truncateAt);
        foreach (var replay in _replays.Where(r => r.Stage.Index == stage.Index ? truncateAt > r.Line : needed.Contains(r.Stage.Index)).ToList())
        {
            _replays.Remove(replay);
            AddReplay(replay, covering);
        }
    }

    private void AddReplay(PendingReplay replay, int? covering)
    {
        var index = _steps.Count;
        var build = new StandardBuild(index, replay.Description, replay.Dockerfile, replay.Stage.Name, _buildArgs, replay.References,
            new Dictionary<string, string>(), _options.NetworkMode, NoCache: covering is null);
        _steps.Add(new PlanBuild(index, replay.Description, replay.Stage.DisplayName, replay.Line, PlanOutput.Tag, build) { ReplayOf = covering });
    }

    private int AddSquash(string description, Stage stage, int? line, PlanOutput output, IReadOnlyList<string> tags, PlanImage image, PlanImage baseImage, string baseName)
    {
        var index = _steps.Count;
        _steps.Add(new PlanSquash(index, description, stage.DisplayName, line, output, Tags(output, tags), image, baseImage, baseName));
        return index;
    }

    private int AddConfig(PlanStepKind kind, string description, Stage stage, int? line, PlanOutput output, IReadOnlyList<string> tags, PlanImage image, PlanImage? onBuildFrom)
    {
        var index = _steps.Count;
        _steps.Add(new PlanConfig(index, kind, description, stage.DisplayName, line, output, Tags(output, tags), image, onBuildFrom));
        return index;
    }

    // ---- generated Dockerfiles -------------------------------------------------------------------------

    /// <summary>
    /// The Dockerfile of a build of <paramref name="target"/> up to (not including) line <paramref name="truncateAt"/>,
    /// same line numbers as the user's: TAG and COMPRESS lines, the part of a stage a COMPRESS replaced, what was
    /// truncated and the stages the build does not need are blank; a stage continued after a COMPRESS starts
    /// <c>FROM</c> the squashed image, keeping its ARG lines; references to compressed stages name their images.
    /// </summary>
    private string Generate(Stage target, int truncateAt)
    {
        var lines = (string[])_lines.Clone();
        var needed = NeededNow(target, truncateAt);
        foreach (var stage in _model.Stages)
        {
            var (start, end) = Extent(stage);
            if (stage.Index > target.Index)
            {
                Blank(lines, start, end);
                continue;
            }
            if (!needed.Contains(stage.Index))
            {
                // Kept as an empty stage so that stage indices (COPY --from=0) do not move.
                Blank(lines, start, end);
                lines[start - 1] = "FROM scratch" + (stage.Name is null ? "" : " AS " + stage.Name);
                continue;
            }
            var status = _status[stage.Index];
            var bodyAfter = stage.From.Range.EndLine;
            if (status.Continuation is { } continuation)
            {
                Blank(lines, stage.From.Range.StartLine, stage.From.Range.EndLine);
                lines[stage.From.Range.StartLine - 1] = "FROM " + continuation.Tag + (stage.Name is null ? "" : " AS " + stage.Name);
                var cmd = CmdToKeep(stage, continuation.Line);
                foreach (var instruction in stage.Instructions.Where(i => i.Range.StartLine <= continuation.Line && i is not ArgInstruction && i != cmd))
                    Blank(lines, instruction.Range.StartLine, instruction.Range.EndLine);
                bodyAfter = continuation.Line;
            }
            else if (FromStage(stage) is { } from && _status[from.Index].Result is { } fromResult)
            {
                Blank(lines, stage.From.Range.StartLine, stage.From.Range.EndLine);
                lines[stage.From.Range.StartLine - 1] = "FROM " + (stage.From.Platform is { } p ? "--platform=" + p + " " : "") + TagOf(fromResult)
                    + (stage.Name is null ? "" : " AS " + stage.Name);
            }
            foreach (var instruction in stage.Instructions.Where(i => i.Range.StartLine > bodyAfter))
            {
                if ((stage.Index == target.Index && instruction.Range.StartLine >= truncateAt) || instruction is TagInstruction or CompressInstruction)
                    Blank(lines, instruction.Range.StartLine, instruction.Range.EndLine);
                else if (instruction is CopyInstruction { From: { } source } && CopySourceStage(source, stage.Index) is { } copied && _status[copied.Index].Result is { } copiedResult)
                    RewriteFromFlag(lines, instruction, TagOf(copiedResult));
            }
        }
        return string.Join('\n', lines);
    }

    /// <summary>
    /// The stage's last CMD before a COMPRESS at <paramref name="line"/>, when an ENTRYPOINT follows the COMPRESS: BuildKit
    /// resets an inherited CMD at ENTRYPOINT but keeps one the stage set, so the continuation must set it again. Null
    /// when a shell-form CMD would meet another SHELL than it was written under (the SHELL lines are gone).
    /// </summary>
    private static Instruction? CmdToKeep(Stage stage, int line)
    {
        if (!stage.Instructions.Any(i => i is EntrypointInstruction && i.Range.StartLine > line)) return null;
        var cmd = stage.Instructions.LastOrDefault(i => i is CmdInstruction && i.Range.StartLine < line);
        if (cmd is CmdInstruction { Command.IsJson: false } && stage.Instructions.Any(i => i is ShellInstruction && i.Range.StartLine > cmd.Range.StartLine && i.Range.StartLine < line))
            return null;
        return cmd;
    }

    /// <summary>The stages a build of <paramref name="target"/> truncated at a line needs, where compressed stages count as images.</summary>
    private HashSet<int> NeededNow(Stage target, int truncateAt)
    {
        var needed = new HashSet<int>();
        var pending = new Stack<Stage>([target]);
        while (pending.Count > 0)
        {
            var stage = pending.Pop();
            if (!needed.Add(stage.Index)) continue;
            var status = _status[stage.Index];
            var bodyAfter = stage.From.Range.EndLine;
            if (status.Continuation is { } continuation) bodyAfter = continuation.Line;
            else if (FromStage(stage) is { } from && _status[from.Index].Result is null) pending.Push(from);
            foreach (var instruction in stage.Instructions.Where(i => i.Range.StartLine > bodyAfter))
            {
                if (stage.Index == target.Index && instruction.Range.StartLine >= truncateAt) break;
                if (instruction is CopyInstruction { From: { } source } && CopySourceStage(source, stage.Index) is { } copied && _status[copied.Index].Result is null)
                    pending.Push(copied);
            }
        }
        return needed;
    }

    /// <summary>The stage's lines: from its FROM to the line before the next FROM (or the end of the file).</summary>
    private (int Start, int End) Extent(Stage stage)
    {
        var start = stage.From.Range.StartLine;
        var end = stage.Index + 1 < _model.Stages.Count ? _model.Stages[stage.Index + 1].From.Range.StartLine - 1 : _lines.Length;
        return (start, end);
    }

    private static void Blank(string[] lines, int start, int end)
    {
        for (var l = start; l <= end && l <= lines.Length; l++)
            lines[l - 1] = "";
    }

    /// <summary>Replaces the <c>--from=...</c> word of a COPY/ADD with <c>--from=<paramref name="reference"/></c>, in place.</summary>
    private void RewriteFromFlag(string[] lines, Instruction instruction, string reference)
    {
        var flag = instruction.Node.Flags.FirstOrDefault(f => f.Text.StartsWith("--from=", StringComparison.OrdinalIgnoreCase))
            ?? throw new BuildException($"{File}:{instruction.Range.StartLine}: cannot find the --from flag to point it at the compressed stage");
        var text = lines[flag.Position.Line - 1];
        var at = flag.Position.Column - 1;
        var end = at;
        while (end < text.Length && !char.IsWhiteSpace(text[end])) end++;
        lines[flag.Position.Line - 1] = string.Concat(text.AsSpan(0, at), "--from=", reference, text.AsSpan(end));
    }

    // ---- variables -----------------------------------------------------------------------------------

    private VariableLookup MetaLookup() => new(_meta);

    private string ExpandMeta(string word) => _expander.ExpandWord(word, MetaLookup());

    private string Expand(string word, IVariableLookup lookup) => _expander.ExpandWord(word, lookup);

    private List<string> TagReferences(TagInstruction tag, StageVariables vars)
    {
        var refs = new List<string>();
        foreach (var word in tag.References)
        {
            if (!word.Contains('$', StringComparison.Ordinal))
            {
                refs.Add(word);
                continue;
            }
            foreach (var name in _expander.ExpandWords(word, vars.Lookup()))
            {
                if (InstructionParser.CheckTagReference(name) is { } why)
                    throw new BuildException($"{File}:{tag.Range.StartLine}: {why}");
                refs.Add(name);
            }
        }
        if (refs.Count == 0) throw new BuildException($"{File}:{tag.Range.StartLine}: TAG names no image after expansion");
        return refs;
    }

    /// <summary>
    /// The variables a stage's TAG and COMPRESS words see, as far as the Dockerfile tells: its ARGs (build arg,
    /// else default, else the meta ARG) and its ENV instructions. The base image's Env is not known here.
    /// </summary>
    private sealed class StageVariables(PlanCompiler compiler)
    {
        private readonly Dictionary<string, string> _args = new(StringComparer.Ordinal);
        private readonly Dictionary<string, string> _env = new(StringComparer.Ordinal);

        public VariableLookup Lookup()
        {
            var all = new Dictionary<string, string>(_args, StringComparer.Ordinal);
            foreach (var (k, v) in _env) all[k] = v;
            return new VariableLookup(all);
        }

        public void Declare(ArgInstruction arg)
        {
            foreach (var decl in arg.Args)
            {
                string? value = compiler._buildArgs.TryGetValue(decl.Name, out var given) ? given
                    : decl.DefaultValue is not null ? compiler.Expand(decl.DefaultValue, Lookup())
                    : compiler._meta.GetValueOrDefault(decl.Name);
                if (value is null) _args.Remove(decl.Name);
                else _args[decl.Name] = value;
            }
        }

        public void Set(EnvInstruction env)
        {
            var lookup = Lookup();
            foreach (var pair in env.Variables)
                _env[compiler.Expand(pair.Key, lookup)] = compiler.Expand(pair.Value, lookup);
        }
    }
}
