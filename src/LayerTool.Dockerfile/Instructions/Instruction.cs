using LayerTool.Dockerfile.Syntax;

namespace LayerTool.Dockerfile.Instructions;

/// <summary>
/// A typed instruction. Every value is raw, as written (quotes and <c>$VARS</c> kept), because the builder
/// expands at build time with the ARG/ENV state of that step (see <see cref="Model.VariableState"/>).
/// <see cref="Node"/> keeps the source: line range, original text, flags.
/// </summary>
public abstract record Instruction
{
    public required InstructionNode Node { get; init; }

    public string Keyword => Node.Keyword;

    public SourceRange Range => Node.Range;

    public SourcePosition Position => Node.Position;

    /// <summary>The logical line (continuations joined).</summary>
    public string Original => Node.Original;

    /// <summary>The source lines as written.</summary>
    public string SourceText => Node.SourceText;

    /// <summary>True when the builder expands this instruction's words (<see cref="Keywords.Expands"/>).</summary>
    public bool Expands => Keywords.Expands(Keyword);
}

/// <summary>A command in shell form (one string, run through the SHELL) or exec form (a JSON array).</summary>
public sealed record CommandLine(IReadOnlyList<string> Arguments, bool IsJson)
{
    /// <summary>Shell form: the builder prepends the current SHELL.</summary>
    public bool PrependShell => !IsJson;

    /// <summary>Value equality over the arguments (not list identity).</summary>
    public bool Equals(CommandLine? other) =>
        other is not null && IsJson == other.IsJson && Arguments.SequenceEqual(other.Arguments, StringComparer.Ordinal);

    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(IsJson);
        foreach (var a in Arguments)
            hash.Add(a, StringComparer.Ordinal);
        return hash.ToHashCode();
    }

    public override string ToString() => IsJson ? "[" + string.Join(", ", Arguments.Select(LineSplitter.Quote)) + "]" : string.Join(' ', Arguments);
}

/// <summary>ENV or LABEL pair, raw (expand both key and value at build time).</summary>
public sealed record KeyValue(string Key, string Value, bool HasEquals);

/// <summary>One name declared by ARG, with its raw default (null when none was given).</summary>
public sealed record ArgDeclaration(string Name, string? DefaultValue);

/// <summary><c>FROM [--platform=p] image [AS name]</c>.</summary>
public sealed record FromInstruction(string BaseName, string? StageName, string? Platform) : Instruction
{
    public bool IsScratch => string.Equals(BaseName, "scratch", StringComparison.OrdinalIgnoreCase);
}

/// <summary><c>RUN</c>; <see cref="Heredocs"/> are the bodies of <c>&lt;&lt;EOF</c> words in the command.</summary>
public sealed record RunInstruction(CommandLine Command, IReadOnlyList<Heredoc> Heredocs, IReadOnlyList<string> Mounts, string? Network, string? Security) : Instruction;

public sealed record CmdInstruction(CommandLine Command, IReadOnlyList<Heredoc> Heredocs) : Instruction;

/// <summary><c>ENTRYPOINT</c>; an empty <see cref="Command"/> clears it.</summary>
public sealed record EntrypointInstruction(CommandLine Command) : Instruction;

/// <summary><c>SHELL ["exe", "args"]</c> (JSON form only).</summary>
public sealed record ShellInstruction(IReadOnlyList<string> Shell) : Instruction;

public sealed record EnvInstruction(IReadOnlyList<KeyValue> Variables) : Instruction;

public sealed record ArgInstruction(IReadOnlyList<ArgDeclaration> Args) : Instruction;

public sealed record LabelInstruction(IReadOnlyList<KeyValue> Labels) : Instruction;

/// <summary><c>EXPOSE 80 443/tcp</c>, raw words (expand, then split on spaces, at build time).</summary>
public sealed record ExposeInstruction(IReadOnlyList<string> Ports) : Instruction;

/// <summary><c>VOLUME /a /b</c> (words, split again after expansion) or <c>VOLUME ["/a", "/b"]</c> (one path per string).</summary>
public sealed record VolumeInstruction(IReadOnlyList<string> Paths) : Instruction
{
    /// <summary>True when written as a JSON array: each string is one path, never split.</summary>
    public bool IsJson => Node.IsJson;
}

public sealed record UserInstruction(string User) : Instruction;

public sealed record WorkdirInstruction(string Path) : Instruction;

public sealed record StopSignalInstruction(string Signal) : Instruction;

/// <summary>Deprecated <c>MAINTAINER name</c>.</summary>
public sealed record MaintainerInstruction(string Maintainer) : Instruction;

/// <summary>
/// <c>HEALTHCHECK NONE</c> or <c>HEALTHCHECK [options] CMD command</c>. Durations null when not given.
/// </summary>
public sealed record HealthcheckInstruction(
    bool IsNone,
    CommandLine? Command,
    TimeSpan? Interval,
    TimeSpan? Timeout,
    TimeSpan? StartPeriod,
    TimeSpan? StartInterval,
    int? Retries) : Instruction
{
    /// <summary>The image config's <c>Healthcheck.Test</c>: <c>["NONE"]</c>, <c>["CMD", ...]</c> or <c>["CMD-SHELL", cmd]</c>.</summary>
    public IReadOnlyList<string> Test => IsNone || Command is null
        ? ["NONE"]
        : [Command.IsJson ? "CMD" : "CMD-SHELL", .. Command.Arguments];
}

/// <summary><c>ONBUILD trigger</c>: <see cref="Expression"/> is stored in the image; <see cref="Trigger"/> is it parsed.</summary>
public sealed record OnbuildInstruction(string Expression, Instruction Trigger) : Instruction;

/// <summary>LayerTool: <c>TAG ref [ref...]</c> tags the image produced so far with every reference.</summary>
public sealed record TagInstruction(IReadOnlyList<string> References) : Instruction;

/// <summary>
/// LayerTool: <c>COMPRESS [base]</c> squashes every layer added since <see cref="Base"/> into one. Null base =
/// the stage's FROM image. Otherwise an image reference, a stage name, or a name an earlier TAG gave; see
/// <see cref="Model.DockerfileModel.ResolveCompressBase"/>.
/// </summary>
public sealed record CompressInstruction(string? Base) : Instruction;
