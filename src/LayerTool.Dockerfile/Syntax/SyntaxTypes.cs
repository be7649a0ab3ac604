namespace LayerTool.Dockerfile.Syntax;

/// <summary>One word of an instruction as written (quotes and escapes kept), with where it starts.</summary>
public sealed record SyntaxWord(string Text, SourcePosition Position)
{
    public override string ToString() => Text;
}

/// <summary>
/// One <c>key=value</c> (or legacy <c>key value</c>) pair of ENV or LABEL, raw: quotes and escapes are removed
/// only by expansion.
/// </summary>
/// <param name="Key">The name, raw.</param>
/// <param name="Value">The value, raw (quotes kept).</param>
/// <param name="HasEquals">False for the legacy one-pair form <c>ENV key the rest is the value</c>.</param>
/// <param name="Position">Where the pair starts.</param>
public sealed record SyntaxPair(string Key, string Value, bool HasEquals, SourcePosition Position);

/// <summary>A heredoc body attached to an instruction.</summary>
/// <param name="Name">The delimiter word, quotes removed.</param>
/// <param name="Content">The body as written, every line ending in <c>\n</c>, delimiter line excluded.</param>
/// <param name="Expand">False when the delimiter was quoted (<c>&lt;&lt;"EOF"</c>): the body is taken literally.</param>
/// <param name="Chomp">True for <c>&lt;&lt;-EOF</c>: leading tabs are stripped from every line.</param>
/// <param name="FileDescriptor">The number written before <c>&lt;&lt;</c> (0 when none).</param>
public sealed record Heredoc(string Name, string Content, bool Expand, bool Chomp, int FileDescriptor)
{
    /// <summary>The body with leading tabs removed when <see cref="Chomp"/> is set.</summary>
    public string EffectiveContent => Chomp ? ChompTabs(Content) : Content;

    private static string ChompTabs(string content) =>
        string.Join('\n', content.Split('\n').Select(l => l.TrimStart('\t')));
}

/// <summary>A parser directive from the top of the file (<c># escape=`</c>, <c># syntax=...</c>).</summary>
public sealed record ParserDirective(string Name, string Value, int Line);
