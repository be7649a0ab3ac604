using System.Text;
using System.Text.Json;

namespace LayerTool.Dockerfile.Syntax;

/// <summary>The ways Docker cuts an instruction's argument text into words.</summary>
internal static class LineSplitter
{
    /// <summary>Reads leading <c>--flag</c> words starting at <paramref name="pos"/>; returns them and where the arguments start.</summary>
    public static (IReadOnlyList<SyntaxWord> Flags, int ArgStart) ExtractFlags(string line, int pos, char escape, LineMap map)
    {
        var flags = new List<SyntaxWord>();
        while (true)
        {
            while (pos < line.Length && char.IsWhiteSpace(line[pos]))
                pos++;
            if (pos >= line.Length)
                return (flags, line.Length);
            if (line[pos] != '-' || pos + 1 >= line.Length || line[pos + 1] != '-')
                return (flags, pos);

            var start = pos;
            var word = new StringBuilder();
            char quote = '\0';
            for (; pos < line.Length; pos++)
            {
                var ch = line[pos];
                if (quote == '\0' && char.IsWhiteSpace(ch))
                    break;
                if (quote == '\0' && ch is '\'' or '"')
                {
                    quote = ch;
                    continue;
                }

                if (quote != '\0' && ch == quote)
                {
                    quote = '\0';
                    continue;
                }

                if (ch == escape)
                {
                    if (pos + 1 == line.Length)
                        continue;
                    pos++;
                    ch = line[pos];
                }

                word.Append(ch);
            }

            var text = word.ToString();
            if (text == "--")
                return (flags, pos);
            flags.Add(new SyntaxWord(text, map.At(start)));
        }
    }

    /// <summary>The strings of a JSON string array, or null when <paramref name="rest"/> is not one (shell form).</summary>
    public static IReadOnlyList<SyntaxWord>? TryJson(string rest, int offset, LineMap map)
    {
        var trimmed = rest.TrimStart();
        if (!trimmed.StartsWith('['))
            return null;
        var at = map.At(offset + (rest.Length - trimmed.Length));
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(trimmed);
        }
        catch (JsonException)
        {
            return null;
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Array)
                return null;
            var words = new List<SyntaxWord>();
            foreach (var e in doc.RootElement.EnumerateArray())
            {
                if (e.ValueKind != JsonValueKind.String)
                    throw new LineSyntaxException("when using JSON array syntax, arrays must be comprised of strings only", at);
                words.Add(new SyntaxWord(e.GetString()!, at));
            }

            return words;
        }
    }

    /// <summary>Words separated by white space; quotes mean nothing here.</summary>
    public static IReadOnlyList<SyntaxWord> SplitWhitespace(string rest, int offset, LineMap map)
    {
        var words = new List<SyntaxWord>();
        var i = 0;
        while (i < rest.Length)
        {
            while (i < rest.Length && DockerfileParser.IsWhite(rest[i]))
                i++;
            if (i >= rest.Length)
                break;
            var start = i;
            while (i < rest.Length && !DockerfileParser.IsWhite(rest[i]))
                i++;
            words.Add(new SyntaxWord(rest[start..i], map.At(offset + start)));
        }

        return words;
    }

    /// <summary>
    /// Words separated by white space outside quotes; quotes and escape tokens are kept in the words (the
    /// expander removes them later). An escape token at the very end is dropped.
    /// </summary>
    public static IReadOnlyList<SyntaxWord> SplitQuoted(string rest, int offset, char escape, LineMap map)
    {
        var words = new List<SyntaxWord>();
        var sb = new StringBuilder();
        var inWord = false;
        var blankOk = false;
        char quote = '\0';
        var start = 0;

        void Finish()
        {
            if (blankOk || sb.Length > 0)
                words.Add(new SyntaxWord(sb.ToString(), map.At(offset + start)));
            sb.Clear();
            blankOk = false;
            inWord = false;
        }

        for (var i = 0; i < rest.Length; i++)
        {
            var ch = rest[i];
            if (!inWord)
            {
                if (char.IsWhiteSpace(ch))
                    continue;
                inWord = true;
                start = i;
            }

            if (quote == '\0')
            {
                if (char.IsWhiteSpace(ch))
                {
                    Finish();
                    continue;
                }

                if (ch is '\'' or '"')
                {
                    quote = ch;
                    blankOk = true;
                }
                else if (ch == escape)
                {
                    if (i + 1 == rest.Length)
                        continue;
                    sb.Append(ch);
                    ch = rest[++i];
                }

                sb.Append(ch);
                continue;
            }

            if (ch == quote)
            {
                quote = '\0';
            }
            else if (ch == escape && quote != '\'')
            {
                if (i + 1 == rest.Length)
                {
                    quote = '\0';
                    continue;
                }

                sb.Append(ch);
                ch = rest[++i];
            }

            sb.Append(ch);
        }

        if (inWord)
            Finish();
        return words;
    }

    /// <summary>ENV/LABEL: either <c>key value with spaces</c> (one pair) or <c>k=v k2="v 2"</c>.</summary>
    public static IReadOnlyList<SyntaxPair> SplitPairs(string rest, int offset, char escape, LineMap map, string keyword)
    {
        var words = SplitQuoted(rest, offset, escape, map);
        if (words.Count == 0)
            return [];
        if (!words[0].Text.Contains('=', StringComparison.Ordinal))
        {
            var i = 0;
            while (i < rest.Length && !DockerfileParser.IsWhite(rest[i]))
                i++;
            var j = i;
            while (j < rest.Length && DockerfileParser.IsWhite(rest[j]))
                j++;
            if (j >= rest.Length)
                throw new LineSyntaxException($"{keyword} must have two arguments", map.At(offset));
            return [new SyntaxPair(rest[..i], rest[j..], false, map.At(offset))];
        }

        var pairs = new List<SyntaxPair>();
        foreach (var w in words)
        {
            var eq = w.Text.IndexOf('=', StringComparison.Ordinal);
            if (eq < 0)
            {
                throw new LineSyntaxException(
                    $"Syntax error - can't find = in {Quote(w.Text)}. Must be of the form: name=value", w.Position);
            }

            pairs.Add(new SyntaxPair(w.Text[..eq], w.Text[(eq + 1)..], true, w.Position));
        }

        return pairs;
    }

    /// <summary>Double-quotes <paramref name="s"/> with backslash escapes, like Go's %q for plain text.</summary>
    public static string Quote(string s) =>
        "\"" + s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
}
