using System.Text;
using System.Text.RegularExpressions;

namespace LayerTool.Dockerfile.DockerIgnore;

/// <summary>
/// A <c>.dockerignore</c> matcher with Docker's rules: patterns relative to the context root, <c>*</c> and
/// <c>?</c> within one path segment, <c>**</c> any number of segments, <c>[...]</c> classes, <c>!</c> re-includes,
/// the last matching pattern wins, and a path is excluded when it or one of its parents matches.
/// Pure: it matches strings and never touches the file system.
/// </summary>
public sealed class DockerIgnoreMatcher
{
    private readonly IReadOnlyList<IgnorePattern> _patterns;

    /// <summary>Compiles <paramref name="patterns"/> (already read from a file, see <see cref="ReadPatterns"/>).</summary>
    /// <exception cref="ArgumentException">A pattern is malformed (a lone <c>!</c>, an unclosed <c>[</c>).</exception>
    public DockerIgnoreMatcher(IEnumerable<string> patterns)
    {
        ArgumentNullException.ThrowIfNull(patterns);
        var list = new List<IgnorePattern>();
        foreach (var raw in patterns)
        {
            var p = raw.Trim();
            if (p.Length == 0)
                continue;
            p = PathCleaner.Clean(p);
            var exclusion = p[0] == '!';
            if (exclusion)
            {
                if (p.Length == 1)
                    throw new ArgumentException("illegal exclusion pattern: \"!\"", nameof(patterns));
                p = p[1..];
            }

            list.Add(new IgnorePattern(p, exclusion));
        }

        _patterns = list;
    }

    /// <summary>A matcher that excludes nothing.</summary>
    public static DockerIgnoreMatcher Empty { get; } = new([]);

    /// <summary>Reads a <c>.dockerignore</c> file's text and compiles it.</summary>
    public static DockerIgnoreMatcher Parse(string text) => new(ReadPatterns(text));

    /// <summary>The patterns as written, cleaned (the re-include ones start with <c>!</c>).</summary>
    public IReadOnlyList<string> Patterns => [.. _patterns.Select(p => (p.Exclusion ? "!" : string.Empty) + p.Text)];

    /// <summary>True when some pattern re-includes (<c>!</c>): a walker cannot skip an excluded directory whole.</summary>
    public bool HasExclusions => _patterns.Any(p => p.Exclusion);

    /// <summary>
    /// The patterns of a <c>.dockerignore</c> text: BOM stripped, lines starting with <c>#</c> skipped, blanks
    /// skipped, each trimmed and cleaned, a leading <c>/</c> removed.
    /// </summary>
    public static IReadOnlyList<string> ReadPatterns(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var result = new List<string>();
        var t = text.StartsWith('\uFEFF') ? text[1..] : text;
        foreach (var rawLine in t.Split('\n'))
        {
            var line = rawLine.TrimEnd('\r');
            if (line.StartsWith('#'))
                continue;
            line = line.Trim();
            if (line.Length == 0)
                continue;
            var invert = line[0] == '!';
            if (invert)
                line = line[1..].Trim();
            if (line.Length > 0)
            {
                line = PathCleaner.Clean(line);
                if (line.Length > 1 && line[0] == '/')
                    line = line[1..];
            }

            result.Add(invert ? "!" + line : line);
        }

        return result;
    }

    /// <summary>
    /// True when <paramref name="path"/> (relative to the context, <c>/</c>-separated) is excluded from the
    /// context: the last pattern matching it or one of its parent directories is not a <c>!</c> pattern.
    /// </summary>
    public bool IsExcluded(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var file = PathCleaner.Clean(path.Replace('\\', '/'));
        if (file.Length > 1 && file[0] == '/')
            file = file.TrimStart('/');
        if (file is "." or "/" or "")
            return false;
        var slash = file.LastIndexOf('/');
        var parents = slash < 0 ? [] : file[..slash].Split('/');
        var matched = false;
        foreach (var pattern in _patterns)
        {
            if (pattern.Exclusion != matched)
                continue;
            var match = pattern.Matches(file);
            for (var i = 0; !match && i < parents.Length; i++)
                match = pattern.Matches(string.Join('/', parents[..(i + 1)]));
            if (match)
                matched = !pattern.Exclusion;
        }

        return matched;
    }

    /// <summary>True when <paramref name="path"/> stays in the context.</summary>
    public bool IsIncluded(string path) => !IsExcluded(path);

    private sealed class IgnorePattern
    {
        private readonly Kind _kind;
        private readonly Regex? _regex;

        public IgnorePattern(string text, bool exclusion)
        {
            Text = text;
            Exclusion = exclusion;
            (_kind, _regex) = Compile(text);
        }

        private enum Kind
        {
            Exact,
            Prefix,
            Suffix,
            Regex,
        }

        public string Text { get; }

        public bool Exclusion { get; }

        public bool Matches(string path) => _kind switch
        {
            Kind.Exact => path == Text,
            Kind.Prefix => path.StartsWith(Text[..^2], StringComparison.Ordinal),
            Kind.Suffix => path.EndsWith(Text[2..], StringComparison.Ordinal) || (Text[2] == '/' && path == Text[3..]),
            _ => _regex!.IsMatch(path),
        };

        private static (Kind, Regex?) Compile(string pattern)
        {
            var re = new StringBuilder("^");
            var kind = Kind.Exact;
            for (var i = 0; i < pattern.Length; i++)
            {
                var ch = pattern[i];
                if (ch == '*')
                {
                    if (i + 1 < pattern.Length && pattern[i + 1] == '*')
                    {
                        var first = i == 0;
                        i++;
                        if (i + 1 < pattern.Length && pattern[i + 1] == '/')
                            i++;
                        if (i + 1 >= pattern.Length)
                        {
                            if (kind == Kind.Exact)
                            {
                                kind = Kind.Prefix;
                            }
                            else
                            {
                                re.Append(".*");
                                kind = Kind.Regex;
                            }
                        }
                        else
                        {
                            re.Append("(.*/)?");
                            kind = Kind.Regex;
                        }

                        if (first)
                            kind = Kind.Suffix;
                    }
                    else
                    {
                        re.Append("[^/]*");
                        kind = Kind.Regex;
                    }
                }
                else if (ch == '?')
                {
                    re.Append("[^/]");
                    kind = Kind.Regex;
                }
                else if (ch is '.' or '+' or '(' or ')' or '|' or '{' or '}' or '$')
                {
                    re.Append('\\').Append(ch);
                }
                else if (ch == '\\')
                {
                    if (i + 1 < pattern.Length)
                    {
                        re.Append('\\').Append(pattern[++i]);
                        kind = Kind.Regex;
                    }
                    else
                    {
                        re.Append("\\\\");
                    }
                }
                else if (ch is '[' or ']')
                {
                    re.Append(ch);
                    kind = Kind.Regex;
                }
                else
                {
                    re.Append(ch);
                }
            }

            if (kind == Kind.Suffix && pattern.Length < 3)
                return (Kind.Prefix, null); // "**" alone: everything
            if (kind != Kind.Regex)
                return (kind, null);
            try
            {
                return (kind, new Regex(re.Append('$').ToString(), RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1)));
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"syntax error in pattern: {pattern}", nameof(pattern), e);
            }
        }
    }
}

/// <summary>Lexical path cleaning as Go's <c>path.Clean</c>: no <c>.</c>, no <c>..</c> where avoidable, no doubled or trailing slash.</summary>
internal static class PathCleaner
{
    public static string Clean(string path)
    {
        if (path.Length == 0)
            return ".";
        var rooted = path[0] == '/';
        var parts = new List<string>();
        foreach (var part in path.Split('/'))
        {
            if (part.Length == 0 || part == ".")
                continue;
            if (part == "..")
            {
                if (parts.Count > 0 && parts[^1] != "..")
                    parts.RemoveAt(parts.Count - 1);
                else if (!rooted)
                    parts.Add("..");
                continue;
            }

            parts.Add(part);
        }

        var joined = string.Join('/', parts);
        return rooted ? "/" + joined : joined.Length == 0 ? "." : joined;
    }
}
