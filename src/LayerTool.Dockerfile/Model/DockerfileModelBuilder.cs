using LayerTool.Dockerfile.Instructions;
using LayerTool.Dockerfile.Syntax;

namespace LayerTool.Dockerfile.Model;

/// <summary>
/// Turns parsed instructions into stages of typed instructions and applies the rules that span instructions:
/// only ARG before the first FROM, unique stage names, COPY --from an earlier stage, COMPRESS bases.
/// </summary>
public static class DockerfileModelBuilder
{
    /// <summary>Builds the model; throws <see cref="DockerfileException"/> at the first error.</summary>
    public static DockerfileModel Build(DockerfileSyntax syntax)
    {
        var diagnostics = new List<Diagnostic>();
        var model = Build(syntax, diagnostics);
        var error = diagnostics.FirstOrDefault(d => d.IsError);
        return error is null ? model : throw error.ToException();
    }

    /// <summary>
    /// Builds as much of the model as it can, adding every error and warning to <paramref name="diagnostics"/>
    /// (the parser's included). Instructions that fail to parse are left out of the model.
    /// </summary>
    public static DockerfileModel Build(DockerfileSyntax syntax, ICollection<Diagnostic> diagnostics)
    {
        ArgumentNullException.ThrowIfNull(syntax);
        ArgumentNullException.ThrowIfNull(diagnostics);
        var file = syntax.FileName;
        var found = new List<Diagnostic>(syntax.Diagnostics);
        var meta = new List<ArgInstruction>();
        var stages = new List<Stage>();
        FromInstruction? from = null;
        var current = new List<Instruction>();
        var inStage = false;

        void Close()
        {
            if (from is not null)
                stages.Add(new Stage(stages.Count, from.StageName, from, [.. current]));
            from = null;
            current = [];
        }

        foreach (var node in syntax.Instructions)
        {
            if (node.Error is not null)
            {
                if (node.Keyword == Keywords.From)
                {
                    Close();
                    inStage = true;
                }

                continue;
            }

            Instruction instruction;
            try
            {
                instruction = InstructionParser.Parse(node, file);
            }
            catch (DockerfileException e)
            {
                found.Add(Diagnostic.Error(file, e.Position, e.Detail));
                if (node.Keyword == Keywords.From)
                {
                    Close();
                    inStage = true;
                }

                continue;
            }

            switch (instruction)
            {
                case FromInstruction f:
                    Close();
                    inStage = true;
                    if (f.StageName is not null)
                    {
                        var nameWord = node.Arguments[2];
                        if (stages.Any(s => s.Name == f.StageName))
                            found.Add(Diagnostic.Error(file, nameWord.Position, $"duplicate stage name {LineSplitter.Quote(f.StageName)}"));
                        else if (nameWord.Text != f.StageName)
                            found.Add(Diagnostic.Warning(file, nameWord.Position, $"stage name {LineSplitter.Quote(nameWord.Text)} should be lowercase"));
                    }

                    from = f;
                    break;
                case ArgInstruction a when !inStage:
                    meta.Add(a);
                    break;
                case var i when !inStage:
                    found.Add(Diagnostic.Error(file, i.Position,
                        $"{i.Keyword} is not allowed before the first FROM: no build stage in current context"));
                    break;
                default:
                    current.Add(instruction);
                    Check(instruction, file, found);
                    break;
            }
        }

        Close();
        if (stages.Count == 0 && !found.Any(d => d.IsError))
        {
            var at = syntax.Instructions.Count > 0 ? syntax.Instructions[0].Position : new SourcePosition(1, 1);
            found.Add(Diagnostic.Error(file, at, "dockerfile contains no stages to build"));
        }

        var model = new DockerfileModel(file, syntax.EscapeToken, syntax.Directives, meta, stages, []);
        foreach (var stage in stages)
        {
            CheckRepeats(stage, file, found);
            CheckCopyFrom(stage, stages, file, found);
            foreach (var c in stage.Instructions.OfType<CompressInstruction>())
            {
                if (c.Base?.Contains('$', StringComparison.Ordinal) == true)
                    continue; // resolved after expansion
                try
                {
                    model.ResolveCompressBase(stage, c);
                }
                catch (DockerfileException e)
                {
                    found.Add(Diagnostic.Error(file, e.Position, e.Detail));
                }
            }
        }

        var ordered = found.OrderBy(d => d.Position.Line).ThenBy(d => d.Position.Column).ToList();
        foreach (var d in ordered)
            diagnostics.Add(d);
        return model with { Warnings = [.. ordered.Where(d => !d.IsError)] };
    }

    private static void Check(Instruction instruction, string file, List<Diagnostic> found)
    {
        switch (instruction)
        {
            case MaintainerInstruction m:
                found.Add(Diagnostic.Warning(file, m.Position,
                    "MAINTAINER is deprecated; use LABEL org.opencontainers.image.authors=\"...\" instead"));
                break;
        }
    }

    private static void CheckCopyFrom(Stage stage, List<Stage> stages, string file, List<Diagnostic> found)
    {
        foreach (var copy in stage.Instructions.OfType<CopyInstruction>())
        {
            if (copy.From is not { } source || source.Contains('$', StringComparison.Ordinal))
                continue;
            var isIndex = int.TryParse(source, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var index);
            if (isIndex && index >= stages.Count)
            {
                found.Add(Diagnostic.Error(file, copy.Position, $"invalid stage index {index}"));
            }
            else if ((isIndex && index >= stage.Index) || stages.Any(s => s.Index >= stage.Index && s.Name is not null && s.IsNamed(source)))
            {
                found.Add(Diagnostic.Error(file, copy.Position,
                    $"cannot copy from stage {LineSplitter.Quote(source)}, it needs to be defined before current stage {LineSplitter.Quote(stage.DisplayName)}"));
            }
        }
    }

    private static void CheckRepeats(Stage stage, string file, List<Diagnostic> found)
    {
        foreach (var group in stage.Instructions
                     .Where(i => i is CmdInstruction or EntrypointInstruction or HealthcheckInstruction)
                     .GroupBy(i => i.Keyword))
        {
            foreach (var earlier in group.SkipLast(1))
            {
                found.Add(Diagnostic.Warning(file, earlier.Position,
                    $"multiple {group.Key} instructions in stage {stage.DisplayName}; only the last one takes effect"));
            }
        }
    }
}
