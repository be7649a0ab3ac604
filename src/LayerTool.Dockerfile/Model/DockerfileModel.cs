using LayerTool.Dockerfile.Instructions;
using LayerTool.Dockerfile.Shell;
using LayerTool.Dockerfile.Syntax;

namespace LayerTool.Dockerfile.Model;

/// <summary>
/// A parsed, validated Dockerfile: meta ARGs and stages of typed instructions. Build it with
/// <see cref="DockerfileModel.Parse"/> or <see cref="DockerfileModelBuilder"/>.
/// </summary>
public sealed record DockerfileModel(
    string FileName,
    char EscapeToken,
    IReadOnlyList<ParserDirective> Directives,
    IReadOnlyList<ArgInstruction> MetaArgs,
    IReadOnlyList<Stage> Stages,
    IReadOnlyList<Diagnostic> Warnings)
{
    /// <summary>Parses and validates <paramref name="text"/>; throws <see cref="DockerfileException"/> at the first error.</summary>
    public static DockerfileModel Parse(string text, string fileName = "Dockerfile") =>
        DockerfileModelBuilder.Build(DockerfileParser.Parse(text, fileName));

    /// <summary>An expander using this file's escape token.</summary>
    public ShellWordExpander CreateExpander() => new(EscapeToken);

    /// <summary>The stage called <paramref name="nameOrIndex"/> (name, case-insensitive, or index), or null.</summary>
    public Stage? FindStage(string nameOrIndex) => Stages.FirstOrDefault(s => s.IsNamed(nameOrIndex));

    /// <summary>
    /// The stages <paramref name="target"/> needs (FROM another stage, <c>COPY --from</c>), itself included, in
    /// file order. References containing variables are left to the caller.
    /// </summary>
    public IReadOnlyList<Stage> StagesNeededFor(Stage target)
    {
        ArgumentNullException.ThrowIfNull(target);
        var needed = new SortedSet<int>();
        var queue = new Queue<Stage>([target]);
        while (queue.Count > 0)
        {
            var stage = queue.Dequeue();
            if (!needed.Add(stage.Index))
                continue;
            var refs = new List<string> { stage.From.BaseName };
            refs.AddRange(stage.Instructions.OfType<CopyInstruction>().Select(c => c.From).OfType<string>());
            foreach (var r in refs)
            {
                if (Stages.FirstOrDefault(s => s.Index < stage.Index && s.IsNamed(r)) is { } dep)
                    queue.Enqueue(dep);
            }
        }

        return [.. needed.Select(i => Stages[i])];
    }

    /// <summary>
    /// What <paramref name="compress"/> in <paramref name="stage"/> squashes onto. <paramref name="expandedBase"/>
    /// is the argument after expansion (defaults to the raw argument). Order of lookup: no argument = the stage's
    /// FROM; <c>scratch</c>; an earlier stage's name; a name an earlier TAG gave (<c>app</c> = <c>app:latest</c>);
    /// else an image reference. Throws <see cref="DockerfileException"/> when it is none of these.
    /// </summary>
    public CompressBase ResolveCompressBase(Stage stage, CompressInstruction compress, string? expandedBase = null)
    {
        ArgumentNullException.ThrowIfNull(stage);
        ArgumentNullException.ThrowIfNull(compress);
        var value = expandedBase ?? compress.Base;
        if (value is null)
            return new CompressBase(CompressBaseKind.StageFrom, stage.From.BaseName);
        if (value.Length == 0)
            throw Error(compress, "COMPRESS base should not be blank");
        if (value.Equals("scratch", StringComparison.OrdinalIgnoreCase))
            return new CompressBase(CompressBaseKind.Scratch, "scratch");
        if (stage.IsNamed(value) && stage.Name is not null)
            throw Error(compress, $"COMPRESS cannot use its own stage {LineSplitter.Quote(value)} as the base");
        if (Stages.FirstOrDefault(s => s.Index < stage.Index && s.Name is not null && s.IsNamed(value)) is { } earlier)
            return new CompressBase(CompressBaseKind.Stage, earlier.Name!, earlier);
        if (ImageReferenceSyntax.Validate(value) is { } why)
        {
            throw Error(compress,
                $"COMPRESS {LineSplitter.Quote(value)}: not an earlier stage, an earlier TAG or a valid image reference ({why})");
        }

        var normalized = ImageReferenceSyntax.Normalize(value);
        var tag = Stages.Where(s => s.Index <= stage.Index)
            .SelectMany(s => s.Instructions)
            .OfType<TagInstruction>()
            .Where(t => t.Range.StartLine < compress.Range.StartLine)
            .LastOrDefault(t => t.References.Any(r => ImageReferenceSyntax.Normalize(r) == normalized));
        return tag is not null
            ? new CompressBase(CompressBaseKind.Tag, normalized, Tag: tag)
            : new CompressBase(CompressBaseKind.Image, value);
    }

    private DockerfileException Error(Instruction at, string message)
    {
        var pos = at.Node.Arguments.Count > 0 ? at.Node.Arguments[0].Position : at.Position;
        return new DockerfileException(FileName, pos.Line, pos.Column, message);
    }
}
