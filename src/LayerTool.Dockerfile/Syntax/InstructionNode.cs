namespace LayerTool.Dockerfile.Syntax;

/// <summary>How an instruction's arguments were written.</summary>
public enum ArgumentForm
{
    /// <summary>No arguments at all.</summary>
    None,

    /// <summary>Plain words or one shell command line.</summary>
    Shell,

    /// <summary>A JSON string array (<c>["a", "b"]</c>), exec form.</summary>
    Json,
}

/// <summary>
/// One instruction as the parser sees it: keyword, leading <c>--flags</c>, arguments split the way Docker
/// splits that keyword, heredoc bodies, and where it came from. Nothing is expanded here.
/// </summary>
public sealed record InstructionNode
{
    /// <summary>The keyword in upper case (<c>RUN</c>), whatever case it was written in.</summary>
    public required string Keyword { get; init; }

    /// <summary>The keyword exactly as written.</summary>
    public required string KeywordAsWritten { get; init; }

    /// <summary>Leading <c>--name=value</c> / <c>--name</c> words, quotes removed.</summary>
    public IReadOnlyList<SyntaxWord> Flags { get; init; } = [];

    /// <summary>
    /// The arguments, raw. Shell-form RUN/CMD/ENTRYPOINT/SHELL/MAINTAINER/USER/WORKDIR/STOPSIGNAL: one word, the
    /// whole rest of the line. JSON form: the array's strings. FROM/COPY/ADD/VOLUME/EXPOSE/TAG/COMPRESS: split at
    /// white space. ARG: quote-aware words. ENV/LABEL: see <see cref="Pairs"/>. HEALTHCHECK: the type then the
    /// command. ONBUILD: see <see cref="Trigger"/>.
    /// </summary>
    public IReadOnlyList<SyntaxWord> Arguments { get; init; } = [];

    /// <summary>ENV and LABEL pairs (empty for other keywords).</summary>
    public IReadOnlyList<SyntaxPair> Pairs { get; init; } = [];

    public ArgumentForm Form { get; init; }

    public bool IsJson => Form == ArgumentForm.Json;

    public IReadOnlyList<Heredoc> Heredocs { get; init; } = [];

    /// <summary>For ONBUILD: the trigger instruction.</summary>
    public InstructionNode? Trigger { get; init; }

    /// <summary>The logical line: continuation lines joined, comments inside it dropped, escape tokens kept.</summary>
    public required string Original { get; init; }

    /// <summary>The source lines the instruction spans, exactly as written (heredoc bodies included).</summary>
    public required string SourceText { get; init; }

    public required SourceRange Range { get; init; }

    /// <summary>Where the keyword starts.</summary>
    public required SourcePosition Position { get; init; }

    /// <summary>The comment lines right above the instruction, <c>#</c> removed.</summary>
    public IReadOnlyList<string> Comments { get; init; } = [];

    /// <summary>A syntax error in this instruction's line; null when it parsed.</summary>
    public Diagnostic? Error { get; init; }

    /// <summary>True when <see cref="Keyword"/> is an instruction this front end knows.</summary>
    public bool IsKnownKeyword => Keywords.All.Contains(Keyword);
}
