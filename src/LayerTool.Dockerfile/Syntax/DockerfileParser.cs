using System.Text;
using System.Text.RegularExpressions;

namespace LayerTool.Dockerfile.Syntax;

/// <summary>
/// Reads Dockerfile text into <see cref="InstructionNode"/>s, the way Docker's parser does: parser directives
/// at the very top, a byte-order mark and CRLF accepted, the escape token as line continuation, comment and
/// blank lines inside a continuation dropped, JSON or shell form, heredocs. No I/O besides the given text.
/// </summary>
public static partial class DockerfileParser
{
    public const char DefaultEscapeToken = '\\';

    /// <summary>Parses <paramref name="text"/>; throws <see cref="DockerfileException"/> at the first error.</summary>
    public static DockerfileSyntax Parse(string text, string fileName = "Dockerfile")
    {
        var result = ParseLenient(text, fileName);
        var error = result.Diagnostics.FirstOrDefault(d => d.IsError);
        return error is null ? result : throw error.ToException();
    }

    /// <summary>Reads the whole of <paramref name="reader"/> and parses it (strict).</summary>
    public static DockerfileSyntax Parse(TextReader reader, string fileName = "Dockerfile")
    {
        ArgumentNullException.ThrowIfNull(reader);
        return Parse(reader.ReadToEnd(), fileName);
    }

    /// <summary>
    /// Parses <paramref name="text"/> and reports errors as diagnostics instead of throwing: an instruction
    /// whose line is malformed is kept with its <see cref="InstructionNode.Error"/> set; an error that makes the
    /// rest unreadable (bad directive, unterminated heredoc) ends the parse.
    /// </summary>
    public static DockerfileSyntax ParseLenient(string text, string fileName = "Dockerfile")
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(fileName);
        return new Run(text, fileName).Execute();
    }

    internal static bool IsWhite(char c) => c is ' ' or '\t' or '\v' or '\f' or '\r';

    private sealed partial class Run(string text, string fileName)
    {
        private readonly List<Diagnostic> _diagnostics = [];
        private readonly List<InstructionNode> _nodes = [];
        private readonly List<ParserDirective> _directives = [];
        private string[] _lines = [];
        private char _escape = DefaultEscapeToken;

        public DockerfileSyntax Execute()
        {
            var t = text.StartsWith('\uFEFF') ? text[1..] : text;
            var lines = t.Split('\n').ToList();
            if (lines.Count > 0 && lines[^1].Length == 0)
                lines.RemoveAt(lines.Count - 1);
            _lines = [.. lines.Select(l => l.EndsWith('\r') ? l[..^1] : l)];

            if (ReadDirectives(out var i))
                ReadInstructions(i);

            if (_nodes.Count == 0 && !_diagnostics.Any(d => d.IsError))
                _diagnostics.Add(Diagnostic.Error(fileName, new SourcePosition(Math.Max(1, _lines.Length), 1), "file with no instructions"));

            return new DockerfileSyntax(fileName, _escape, _directives, _nodes, _diagnostics);
        }

        [GeneratedRegex(@"^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")]
        private static partial Regex DirectiveRegex();

        /// <summary>Consumes the directive lines at the top; returns false on a fatal error.</summary>
        private bool ReadDirectives(out int next)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            next = 0;
            for (; next < _lines.Length; next++)
            {
                var line = _lines[next].TrimStart();
                if (!line.StartsWith('#'))
                    return true;
                var m = DirectiveRegex().Match(line[1..].TrimStart());
                if (!m.Success)
                    return true;
                var name = m.Groups[1].Value.ToLowerInvariant();
                if (name is not ("escape" or "syntax" or "check"))
                    return true;
                if (!seen.Add(name))
                    return Fatal(next + 1, 1, $"only one {name} parser directive can be used");
                var value = m.Groups[2].Value;
                if (name == "escape")
                {
                    if (value is not ("`" or "\\"))
                        return Fatal(next + 1, 1, $"invalid escape token '{value}' does not match ` or \\");
                    _escape = value[0];
                }

                _directives.Add(new ParserDirective(name, value, next + 1));
            }

            return true;
        }

        private bool Fatal(int line, int column, string message)
        {
            _diagnostics.Add(Diagnostic.Error(fileName, new SourcePosition(line, column), message));
            return false;
        }

        private static bool IsComment(string line)
        {
            var t = line.TrimStart();
            return t.Length > 0 && t[0] == '#';
        }

        /// <summary>Strips a trailing continuation token; returns true when the line continues.</summary>
        private bool TrimContinuation(ref string line)
        {
            var end = line.Length;
            while (end > 0 && line[end - 1] is ' ' or '\t')
                end--;
            if (end == 0 || line[end - 1] != _escape)
                return false;
            if (end >= 2 && line[end - 2] == _escape)
                return false;
            line = line[..(end - 1)];
            return true;
        }

        private void ReadInstructions(int i)
        {
            var comments = new List<string>();
            for (; i < _lines.Length; i++)
            {
                var raw = _lines[i];
                if (IsComment(raw))
                {
                    var c = raw.TrimStart()[1..].Trim();
                    if (c.Length == 0)
                        comments.Clear();
                    else
                        comments.Add(c);
                    continue;
                }

                var indent = raw.Length - raw.TrimStart().Length;
                var first = raw.TrimStart();
                var startLine = i + 1;
                var continues = TrimContinuation(ref first);
                if (!continues && first.Length == 0)
                    continue;

                var map = new LineMap();
                map.Add(0, startLine, indent + 1);
                var buf = new StringBuilder(first);
                var emptyContinuation = 0;
                while (continues && i + 1 < _lines.Length)
                {
                    i++;
                    var next = _lines[i];
                    if (IsComment(next))
                        continue;
                    if (next.Trim().Length == 0)
                    {
                        if (emptyContinuation == 0)
                            emptyContinuation = i + 1;
                        continue;
                    }

                    continues = TrimContinuation(ref next);
                    map.Add(buf.Length, i + 1, 1);
                    buf.Append(next);
                }

                var logical = buf.ToString();
                var node = NodeFromLine(logical, 0, map, startLine, comments);
                comments = [];
                if (emptyContinuation > 0)
                {
                    _diagnostics.Add(Diagnostic.Warning(fileName, new SourcePosition(emptyContinuation, 1),
                        "empty continuation line; Docker will make this an error in a future release"));
                }

                var endLine = i + 1;
                var heredocTarget = node.Keyword == Keywords.Onbuild ? node.Trigger : node;
                if (node.Error is null && heredocTarget is not null && Keywords.WithHeredocs.Contains(heredocTarget.Keyword)
                    && logical.Contains("<<", StringComparison.Ordinal))
                {
                    var heredocs = new List<Heredoc>();
                    foreach (var (name, expand, chomp, fd) in HeredocScanner.FindHeredocs(logical))
                    {
                        var content = new StringBuilder();
                        var terminated = false;
                        while (i + 1 < _lines.Length)
                        {
                            i++;
                            var line = _lines[i];
                            var candidate = chomp ? line.TrimStart('\t') : line;
                            if (candidate == name)
                            {
                                terminated = true;
                                break;
                            }

                            content.Append(line).Append('\n');
                        }

                        if (!terminated)
                        {
                            _diagnostics.Add(Diagnostic.Error(fileName, node.Position,
                                $"unterminated heredoc: no line \"{name}\" closes the heredoc started on line {startLine}"));
                            return;
                        }

                        heredocs.Add(new Heredoc(name, content.ToString(), expand, chomp, fd));
                    }

                    endLine = i + 1;
                    if (node.Trigger is not null)
                        node = node with { Heredocs = heredocs, Trigger = node.Trigger with { Heredocs = heredocs } };
                    else
                        node = node with { Heredocs = heredocs };
                }

                node = WithRange(node, new SourceRange(startLine, endLine),
                    string.Join('\n', _lines[(startLine - 1)..endLine]));
                _nodes.Add(node);
            }
        }

        private static InstructionNode WithRange(InstructionNode node, SourceRange range, string source) =>
            node with
            {
                Range = range,
                SourceText = source,
                Trigger = node.Trigger is null ? null : WithRange(node.Trigger, range, source),
            };

        private InstructionNode NodeFromLine(string line, int start, LineMap map, int startLine, List<string> comments)
        {
            // keyword
            var p = start;
            while (p < line.Length && IsWhite(line[p]))
                p++;
            var kwStart = p;
            while (p < line.Length && !IsWhite(line[p]))
                p++;
            var keywordAsWritten = line[kwStart..p];
            var keyword = keywordAsWritten.ToUpperInvariant();
            var (flags, argStart) = LineSplitter.ExtractFlags(line, p, _escape, map);
            while (argStart < line.Length && IsWhite(line[argStart]))
                argStart++;
            var argEnd = line.Length;
            while (argEnd > argStart && IsWhite(line[argEnd - 1]))
                argEnd--;
            var rest = argStart < argEnd ? line[argStart..argEnd] : string.Empty;
            var node = new InstructionNode
            {
                Keyword = keyword,
                KeywordAsWritten = keywordAsWritten,
                Flags = flags,
                Original = line[start..],
                SourceText = line,
                Range = new SourceRange(startLine, startLine),
                Position = map.At(kwStart),
                Comments = [.. comments],
            };
            try
            {
                return Dispatch(node, line, rest, argStart, map);
            }
            catch (LineSyntaxException e)
            {
                var error = Diagnostic.Error(fileName, e.Position ?? node.Position, e.Message);
                _diagnostics.Add(error);
                return node with { Error = error };
            }
        }

        private InstructionNode Dispatch(InstructionNode node, string line, string rest, int offset, LineMap map)
        {
            switch (node.Keyword)
            {
                case Keywords.Add or Keywords.Copy or Keywords.Volume:
                    {
                        var json = LineSplitter.TryJson(rest, offset, map);
                        return json is not null
                            ? node with { Arguments = json, Form = ArgumentForm.Json }
                            : WithWords(node, LineSplitter.SplitWhitespace(rest, offset, map));
                    }

                case Keywords.Run or Keywords.Cmd or Keywords.Entrypoint or Keywords.Shell:
                    return MaybeJson(node, rest, offset, map);
                case Keywords.Arg:
                    return WithWords(node, LineSplitter.SplitQuoted(rest, offset, _escape, map));
                case Keywords.Env or Keywords.Label:
                    {
                        var pairs = LineSplitter.SplitPairs(rest, offset, _escape, map, node.Keyword);
                        return node with { Pairs = pairs, Form = pairs.Count == 0 ? ArgumentForm.None : ArgumentForm.Shell };
                    }

                case Keywords.Maintainer or Keywords.StopSignal or Keywords.User or Keywords.Workdir:
                    return WithWords(node, rest.Length == 0 ? [] : [new SyntaxWord(rest, map.At(offset))]);
                case Keywords.Healthcheck:
                    {
                        var sep = 0;
                        while (sep < rest.Length && !char.IsWhiteSpace(rest[sep]))
                            sep++;
                        if (sep == 0)
                            return node;
                        var next = sep;
                        while (next < rest.Length && char.IsWhiteSpace(rest[next]))
                            next++;
                        var type = new SyntaxWord(rest[..sep], map.At(offset));
                        var cmd = MaybeJson(node, rest[next..], offset + next, map);
                        return cmd with { Arguments = [type, .. cmd.Arguments], Form = cmd.Form == ArgumentForm.None ? ArgumentForm.Shell : cmd.Form };
                    }

                case Keywords.Onbuild:
                    if (rest.Length == 0)
                        return node;
                    var trigger = NodeFromLine(line, offset, map, node.Range.StartLine, []);
                    return node with
                    {
                        Trigger = trigger,
                        Error = trigger.Error,
                        Arguments = [new SyntaxWord(rest, map.At(offset))],
                        Form = ArgumentForm.Shell,
                    };
                default:
                    // FROM, EXPOSE, TAG, COMPRESS and unknown keywords: words split at white space.
                    return WithWords(node, LineSplitter.SplitWhitespace(rest, offset, map));
            }
        }


        private static InstructionNode WithWords(InstructionNode node, IReadOnlyList<SyntaxWord> words) =>
            node with { Arguments = words, Form = words.Count == 0 ? ArgumentForm.None : ArgumentForm.Shell };

        private static InstructionNode MaybeJson(InstructionNode node, string rest, int offset, LineMap map)
        {
            if (rest.Length == 0)
                return node;
            var json = LineSplitter.TryJson(rest, offset, map);
            return json is not null
                ? node with { Arguments = json, Form = ArgumentForm.Json }
                : node with { Arguments = [new SyntaxWord(rest, map.At(offset))], Form = ArgumentForm.Shell };
        }
    }
}
