using LayerTool.Dockerfile.Instructions;
using LayerTool.Dockerfile.Shell;
using LayerTool.Dockerfile.Syntax;

namespace LayerTool.Dockerfile.Model;

/// <summary>The findings of <see cref="DockerfileLinter.Lint"/>, ordered by position.</summary>
public sealed record LintResult(IReadOnlyList<Diagnostic> Diagnostics, DockerfileModel? Model)
{
    public bool HasErrors => Diagnostics.Any(d => d.IsError);

    public IEnumerable<Diagnostic> Errors => Diagnostics.Where(d => d.IsError);

    public IEnumerable<Diagnostic> Warnings => Diagnostics.Where(d => !d.IsError);
}

/// <summary>
/// Collects every error and warning in a Dockerfile instead of stopping at the first: syntax, instruction
/// arguments and flags, stage rules, TAG/COMPRESS misuse, and a dry run of variable expansion with the given
/// build args (a required <c>${X:?}</c> that is unset, undefined variables in FROM, unused build args).
/// Only ARG/ENV in the file and the build args are known: variables a base image sets are not.
/// </summary>
public static class DockerfileLinter
{
    public static LintResult Lint(string text, string fileName = "Dockerfile", IReadOnlyDictionary<string, string>? buildArgs = null)
    {
        var syntax = DockerfileParser.ParseLenient(text, fileName);
        var diagnostics = new List<Diagnostic>();
        var model = DockerfileModelBuilder.Build(syntax, diagnostics);
        DryRun(model, buildArgs ?? new Dictionary<string, string>(), diagnostics);
        var ordered = diagnostics.Distinct()
            .OrderBy(d => d.Position.Line).ThenBy(d => d.Position.Column).ToList();
        return new LintResult(ordered, model);
    }

    private static void DryRun(DockerfileModel model, IReadOnlyDictionary<string, string> buildArgs, List<Diagnostic> diagnostics)
    {
        var file = model.FileName;
        var expander = model.CreateExpander();
        var declared = new HashSet<string>(StringComparer.Ordinal);
        var state = VariableState.Create(buildArgs);

        VariableState Try(VariableState s, Instruction at, Func<VariableState> apply)
        {
            try
            {
                return apply();
            }
            catch (ShellExpansionException e)
            {
                diagnostics.Add(Diagnostic.Error(file, at.Position, e.Message));
                return s;
            }
        }

        foreach (var arg in model.MetaArgs)
        {
            declared.UnionWith(arg.Args.Select(a => a.Name));
            var before = state;
            state = Try(state, arg, () => before.Apply(arg, expander));
        }

        state = state.EndMetaScope();
        foreach (var stage in model.Stages)
        {
            try
            {
                var result = expander.Expand(stage.From.BaseName, state.GlobalLookup);
                foreach (var name in result.Unset)
                    diagnostics.Add(Diagnostic.Warning(file, stage.From.Position, $"FROM uses undefined variable {LineSplitter.Quote(name)}: declare it with ARG before the first FROM"));
                if (result.Value.Length == 0)
                    diagnostics.Add(Diagnostic.Error(file, stage.From.Position, $"base name ({stage.From.BaseName}) should not be blank"));
            }
            catch (ShellExpansionException e)
            {
                diagnostics.Add(Diagnostic.Error(file, stage.From.Position, e.Message));
            }

            var s = state.ForNewStage();
            foreach (var instruction in stage.Instructions)
            {
                var before = s;
                switch (instruction)
                {
                    case ArgInstruction a:
                        declared.UnionWith(a.Args.Select(x => x.Name));
                        s = Try(s, a, () => before.Apply(a, expander));
                        break;
                    case EnvInstruction e:
                        s = Try(s, e, () => before.Apply(e, expander));
                        break;
                    default:
                        CheckWords(model, stage, instruction, s, expander, diagnostics);
                        break;
                }
            }
        }

        foreach (var name in buildArgs.Keys.Where(k => !declared.Contains(k) && !VariableState.PredefinedArgs.Contains(k)).Order(StringComparer.Ordinal))
            diagnostics.Add(Diagnostic.Warning(file, new SourcePosition(1, 1), $"build argument {LineSplitter.Quote(name)} is not consumed by any ARG instruction"));
    }

    private static bool IsPortSpec(string spec)
    {
        var slash = spec.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0 && spec[(slash + 1)..].ToLowerInvariant() is not ("tcp" or "udp" or "sctp"))
            return false;
        var range = slash >= 0 ? spec[..slash] : spec;
        var parts = range.Split('-');
        return parts.Length is 1 or 2
            && parts.All(p => p.Length is > 0 and <= 5 && p.All(char.IsAsciiDigit) && int.Parse(p, System.Globalization.CultureInfo.InvariantCulture) <= 65535);
    }

    private static void CheckWords(DockerfileModel model, Stage stage, Instruction instruction, VariableState state,
        ShellWordExpander expander, List<Diagnostic> diagnostics)
    {
        var file = model.FileName;
        var words = ExpandableWords.Of(instruction);
        var expanded = new List<string>();
        foreach (var word in words)
        {
            try
            {
                expanded.Add(expander.ExpandWord(word, state.Lookup));
            }
            catch (ShellExpansionException e)
            {
                diagnostics.Add(Diagnostic.Error(file, instruction.Position, e.Message));
                return;
            }
        }

        switch (instruction)
        {
            case ExposeInstruction:
                foreach (var port in expanded.SelectMany(p => p.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries)))
                {
                    if (!IsPortSpec(port))
                        diagnostics.Add(Diagnostic.Error(file, instruction.Position, $"invalid port {LineSplitter.Quote(port)} in EXPOSE (expected PORT[-PORT][/tcp|/udp|/sctp])"));
                }

                break;
            case TagInstruction t:
                for (var i = 0; i < t.References.Count; i++)
                {
                    if (t.References[i].Contains('$', StringComparison.Ordinal) && InstructionParser.CheckTagReference(expanded[i]) is { } why)
                        diagnostics.Add(Diagnostic.Error(file, t.Position, why));
                }

                break;
            case CompressInstruction { Base: { } b } c when b.Contains('$', StringComparison.Ordinal):
                try
                {
                    model.ResolveCompressBase(stage, c, expanded[0]);
                }
                catch (DockerfileException e)
                {
                    diagnostics.Add(Diagnostic.Error(file, e.Position, e.Detail));
                }

                break;
        }
    }
}
