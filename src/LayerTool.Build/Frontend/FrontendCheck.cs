using LayerTool.Dockerfile.Syntax;

namespace LayerTool.Build.Frontend;

/// <summary>Something a Dockerfile uses that the engine's built-in BuildKit frontend cannot do without help.</summary>
/// <param name="Line">The line it is on (1-based).</param>
/// <param name="What">What it is, for people: "a heredoc", "COPY --link".</param>
/// <param name="Why">Why the engine's builder cannot run it.</param>
/// <param name="ClassicCan">Whether LayerTool's classic executor can build it instead.</param>
public sealed record FrontendGap(int Line, string What, string Why, bool ClassicCan)
{
    public override string ToString() => $"line {Line}: {What} ({Why})";
}

/// <summary>
/// What the Dockerfile frontend built into an engine reads, checked before anything runs. Without a session
/// (LayerTool sends the context as a plain tar) there is no <c># syntax=</c> frontend image, no secret and no
/// ssh mount; the built-in frontend's version follows the engine's: Docker 20.10 has Dockerfile 1.2
/// (<c>RUN --mount</c>, <c>--chmod</c>, no heredocs), Docker 23 has 1.4 (heredocs, <c>COPY --link</c>).
/// </summary>
public static class FrontendCheck
{
    /// <summary>The first engine version whose built-in frontend reads heredocs and <c>COPY --link</c>.</summary>
    public static readonly Version HeredocEngine = new(23, 0);

    /// <summary>The built-in Dockerfile frontend of an engine version (REFERENCE.md; null: unknown or older than BuildKit).</summary>
    public static Version? BuiltInFrontend(Version engine)
    {
        ArgumentNullException.ThrowIfNull(engine);
        return engine switch
        {
            { Major: >= 29 } => new Version(1, 19),
            { Major: 28 } => new Version(1, 14),
            { Major: 27 } => new Version(1, 8),
            { Major: 25 or 26 } => new Version(1, 6),
            { Major: 24 } => new Version(1, 5),
            { Major: 23 } => new Version(1, 4),
            { Major: 20, Minor: 10 } => new Version(1, 2),
            { Major: 19 } => new Version(1, 1),
            { Major: 18, Minor: >= 9 } => new Version(1, 0),
            _ => null,
        };
    }

    /// <summary>The engine's version from its version string (<c>20.10.24+dfsg1</c> → 20.10.24); null when unreadable.</summary>
    public static Version? ParseEngineVersion(string? text)
    {
        if (string.IsNullOrEmpty(text)) return null;
        var end = 0;
        while (end < text.Length && (char.IsAsciiDigit(text[end]) || text[end] == '.')) end++;
        return Version.TryParse(text[..end].TrimEnd('.'), out var v) ? v : null;
    }

    /// <summary>Everything in <paramref name="dockerfile"/> the engine's frontend (at <paramref name="engine"/>) cannot run without a session or a newer frontend.</summary>
    public static IReadOnlyList<FrontendGap> Check(string dockerfile, Version engine, string fileName = "Dockerfile")
    {
        ArgumentNullException.ThrowIfNull(dockerfile);
        ArgumentNullException.ThrowIfNull(engine);
        var syntax = DockerfileParser.ParseLenient(dockerfile, fileName);
        var gaps = new List<FrontendGap>();
        if (syntax.SyntaxDirective is { } frontend)
        {
            var line = syntax.Directives.FirstOrDefault(d => d.Name == "syntax")?.Line ?? 1;
            gaps.Add(new FrontendGap(line, $"# syntax={frontend}",
                "the engine would pull and run that frontend image, which LayerTool's session-less builds cannot (registry auth needs a session; offline it cannot be pulled)", ClassicCan: true));
        }
        var newFrontend = engine >= HeredocEngine;
        foreach (var node in AllNodes(syntax.Instructions))
        {
            var line = node.Position.Line;
            if (node.Heredocs.Count > 0 && !newFrontend)
                gaps.Add(new FrontendGap(line, $"a heredoc in {node.Keyword}", $"the Docker {engine.ToString(2)} engine's frontend (Dockerfile {BuiltInFrontend(engine)?.ToString() ?? "?"}) has no heredocs; Docker 23 and later have them", ClassicCan: true));
            foreach (var flag in node.Flags.Select(f => f.Text))
            {
                if (node.Keyword is "COPY" or "ADD" && (flag == "--link" || flag.StartsWith("--link=", StringComparison.Ordinal)) && !newFrontend)
                    gaps.Add(new FrontendGap(line, $"{node.Keyword} --link", $"the Docker {engine.ToString(2)} engine's frontend has no --link; Docker 23 and later have it", ClassicCan: true));
                if (node.Keyword == "RUN" && flag.StartsWith("--mount=", StringComparison.Ordinal) && MountType(flag["--mount=".Length..]) is "secret" or "ssh")
                    gaps.Add(new FrontendGap(line, $"RUN --mount=type={MountType(flag["--mount=".Length..])}", "secret and ssh mounts are served by the client through a session, which LayerTool's builds do not open", ClassicCan: false));
            }
        }
        return gaps;
    }

    private static IEnumerable<InstructionNode> AllNodes(IEnumerable<InstructionNode> nodes)
    {
        foreach (var n in nodes)
        {
            yield return n;
            if (n.Trigger is { } t) yield return t;
        }
    }

    private static string MountType(string spec)
    {
        foreach (var part in spec.Split(','))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0 && part[..eq].Trim().Equals("type", StringComparison.OrdinalIgnoreCase)) return part[(eq + 1)..].Trim().ToLowerInvariant();
        }
        return "bind";
    }
}
