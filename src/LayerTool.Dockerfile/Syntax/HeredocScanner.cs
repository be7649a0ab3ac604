using System.Text;
using System.Text.RegularExpressions;

namespace LayerTool.Dockerfile.Syntax;

/// <summary>Finds the heredoc openers (<c>&lt;&lt;EOF</c>, <c>2&lt;&lt;-"END"</c>) in an instruction line.</summary>
public static partial class HeredocScanner
{
    [GeneratedRegex(@"^(\d*)<<(-?)\s*([^<]*)$")]
    private static partial Regex OpenerRegex();

    /// <summary>The heredocs opened in <paramref name="line"/>, in order.</summary>
    public static IReadOnlyList<(string Name, bool Expand, bool Chomp, int FileDescriptor)> FindHeredocs(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var found = new List<(string, bool, bool, int)>();
        foreach (var word in ShellWords(line))
        {
            if (TryParseOpener(word) is { } h)
                found.Add(h);
        }

        return found;
    }

    /// <summary>Parses one word as a heredoc opener; null when it is not one.</summary>
    public static (string Name, bool Expand, bool Chomp, int FileDescriptor)? TryParseOpener(string word)
    {
        ArgumentNullException.ThrowIfNull(word);
        var m = OpenerRegex().Match(word);
        if (!m.Success || m.Groups[3].Value.Length == 0)
            return null;
        var raw = m.Groups[3].Value;
        // BuildKit lexes the rest as shell words and wants exactly one: blanks separate words unless quoted or
        // escaped, so a quoted name may hold spaces (<<'one two'), and the end line is that name as it is.
        if (!IsOneWord(raw.TrimStart(' ', '\t')))
            return null;
        var name = Unquote(raw.TrimStart(' ', '\t'));
        if (name.Length == 0)
            return null;
        var fd = m.Groups[1].Value.Length == 0 ? 0 : int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        var expand = CountQuotes(name) == CountQuotes(raw);
        return (name, expand, m.Groups[2].Value == "-", fd);
    }

    private static int CountQuotes(string s) => s.Count(c => c is '\'' or '"');

    /// <summary>True when <paramref name="raw"/> has no blank outside quotes and escapes (one shell word).</summary>
    private static bool IsOneWord(string raw)
    {
        char? quote = null;
        for (var i = 0; i < raw.Length; i++)
        {
            var ch = raw[i];
            if (quote is null && ch == '\\')
            {
                i++;
                continue;
            }
            if (quote == '"' && ch == '\\')
            {
                i++;
                continue;
            }
            if (quote is null && ch is '\'' or '"')
                quote = ch;
            else if (quote == ch)
                quote = null;
            else if (quote is null && char.IsWhiteSpace(ch))
                return false;
        }
        return quote is null;
    }

    /// <summary>Splits like a shell would, keeping quotes and escapes, and keeping <c>&lt;&lt; NAME</c> as one word.</summary>
    private static List<string> ShellWords(string line)
    {
        var words = new List<string>();
        var sb = new StringBuilder();
        for (var i = 0; i < line.Length; i++)
        {
            var ch = line[i];
            if (char.IsWhiteSpace(ch))
            {
                if (sb.Length > 0)
                    words.Add(sb.ToString());
                sb.Clear();
                continue;
            }

            if (ch is '\'' or '"')
            {
                var end = line.IndexOf(ch, i + 1);
                if (ch == '"')
                {
                    end = i + 1;
                    while (end < line.Length && line[end] != '"')
                        end += line[end] == '\\' ? 2 : 1;
                }

                if (end < 0 || end >= line.Length)
                    return []; // an unbalanced quote: Docker's lexer fails and finds no heredoc
                sb.Append(line, i, end - i + 1);
                i = end;
                continue;
            }

            if (ch == '\\' && i + 1 < line.Length)
            {
                sb.Append(ch).Append(line[++i]);
                continue;
            }

            if (ch == '<' && i + 1 < line.Length && line[i + 1] == '<')
            {
                sb.Append("<<");
                i += 2;
                while (i < line.Length && (line[i] == ' ' || line[i] == '\t'))
                    sb.Append(line[i++]);
                i--;
                continue;
            }

            sb.Append(ch);
        }

        if (sb.Length > 0)
            words.Add(sb.ToString());
        return words;
    }

    private static string Unquote(string raw)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < raw.Length; i++)
        {
            var ch = raw[i];
            if (ch == '\'')
            {
                var end = raw.IndexOf('\'', i + 1);
                if (end < 0)
                    end = raw.Length;
                sb.Append(raw, i + 1, end - i - 1);
                i = end;
            }
            else if (ch == '"')
            {
                i++;
                for (; i < raw.Length && raw[i] != '"'; i++)
                {
                    if (raw[i] == '\\' && i + 1 < raw.Length && raw[i + 1] is '"' or '$' or '\\')
                        i++;
                    sb.Append(raw[i]);
                }
            }
            else if (ch == '\\' && i + 1 < raw.Length)
            {
                sb.Append(raw[++i]);
            }
            else
            {
                sb.Append(ch);
            }
        }

        return sb.ToString();
    }
}
