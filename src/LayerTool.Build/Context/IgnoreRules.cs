using System.Text;
using System.Text.RegularExpressions;

namespace LayerTool.Build.Context;

/// <summary>
/// <c>.dockerignore</c> rules as Docker applies them (moby/patternmatcher): patterns are cleaned, a leading
/// <c>/</c> is dropped, <c>!</c> makes an exception, the last matching pattern wins, <c>**</c> matches any
/// number of directories, and a path is excluded when it or one of its parents is.
/// Build-local until the Dockerfile front end's matcher lands; the behaviour is the same.
/// </summary>
public sealed class IgnoreRules
{
    private readonly List<(Regex Pattern, bool Exclusion)> _rules = [];

    public IgnoreRules(IEnumerable<string> lines)
    {
        ArgumentNullException.ThrowIfNull(lines);
        foreach (var raw in lines)
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var exclusion = line.StartsWith('!');
            if (exclusion) line = line[1..].Trim();
            line = Clean(line);
            if (line.Length == 0) continue;
            _rules.Add((new Regex("^" + ToRegex(line) + "$", RegexOptions.CultureInvariant), exclusion));
        }
    }

    public static IgnoreRules Empty { get; } = new([]);

    public bool IsEmpty => _rules.Count == 0;

    /// <summary>Reads <c>.dockerignore</c> in <paramref name="contextDirectory"/> (none: nothing is ignored).</summary>
    public static IgnoreRules Load(string contextDirectory)
    {
        var path = Path.Combine(contextDirectory, ".dockerignore");
        return File.Exists(path) ? new IgnoreRules(File.ReadAllLines(path)) : Empty;
    }

    /// <summary>True when the context-relative path (forward slashes) is excluded.</summary>
    public bool IsExcluded(string relativePath)
    {
        if (_rules.Count == 0) return false;
        var path = relativePath.Trim('/');
        // Per pattern, the path matches when it or any parent does (moby MatchesOrParentMatches); the last
        // matching pattern decides.
        var parts = path.Split('/');
        var candidates = new string[parts.Length];
        for (var i = 0; i < parts.Length; i++) candidates[i] = string.Join('/', parts, 0, i + 1);
        var excluded = false;
        foreach (var (pattern, exclusion) in _rules)
        {
            if (candidates.Any(pattern.IsMatch)) excluded = !exclusion;
        }
        return excluded;
    }

    private static string Clean(string pattern)
    {
        var p = pattern.Replace('\\', '/');
        var parts = new List<string>();
        foreach (var part in p.Split('/'))
        {
            if (part is "" or ".") continue;
            if (part == "..") { if (parts.Count > 0) parts.RemoveAt(parts.Count - 1); continue; }
            parts.Add(part);
        }
        return string.Join('/', parts);
    }

    private static string ToRegex(string pattern)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            switch (c)
            {
                case '*':
                    if (i + 1 < pattern.Length && pattern[i + 1] == '*')
                    {
                        i++;
                        if (i + 1 < pattern.Length && pattern[i + 1] == '/')
                        {
                            i++;
                            sb.Append("(.*/)?");
                        }
                        else sb.Append(".*");
                    }
                    else sb.Append("[^/]*");
                    break;
                case '?':
                    sb.Append("[^/]");
                    break;
                case '[':
                    var end = pattern.IndexOf(']', i + 1);
                    if (end < 0) { sb.Append(@"\["); break; }
                    var cls = pattern[(i + 1)..end];
                    if (cls.StartsWith('^') || cls.StartsWith('!')) cls = "^" + cls[1..];
                    sb.Append('[').Append(cls.Replace(@"\", @"\\", StringComparison.Ordinal)).Append(']');
                    i = end;
                    break;
                case '\\':
                    if (i + 1 < pattern.Length) sb.Append(Regex.Escape(pattern[++i].ToString()));
                    break;
                default:
                    sb.Append(Regex.Escape(c.ToString()));
                    break;
            }
        }
        return sb.ToString();
    }
}
