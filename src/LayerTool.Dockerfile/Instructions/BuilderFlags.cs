using LayerTool.Dockerfile.Syntax;

namespace LayerTool.Dockerfile.Instructions;

/// <summary>The kinds of <c>--flag</c> an instruction accepts.</summary>
internal enum FlagKind
{
    Value,
    Switch,

    /// <summary>May be given several times (<c>--mount</c>, <c>--exclude</c>).</summary>
    List,
}

/// <summary>Parses an instruction's leading <c>--flags</c> against the flags it declares, with Docker's errors.</summary>
internal sealed class BuilderFlags
{
    private readonly Dictionary<string, FlagKind> _declared = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<string>> _values = new(StringComparer.Ordinal);

    public BuilderFlags Declare(string name, FlagKind kind)
    {
        _declared[name] = kind;
        return this;
    }

    public IReadOnlyCollection<string> Declared => _declared.Keys;

    /// <summary>Parses the flags; returns the word that failed and why, or null.</summary>
    public (SyntaxWord Word, string Message)? Parse(IReadOnlyList<SyntaxWord> flags)
    {
        foreach (var word in flags)
        {
            var text = word.Text;
            var body = text.StartsWith("--", StringComparison.Ordinal) ? text[2..] : text;
            var eq = body.IndexOf('=', StringComparison.Ordinal);
            var name = eq < 0 ? body : body[..eq];
            var value = eq < 0 ? null : body[(eq + 1)..];
            if (!_declared.TryGetValue(name, out var kind))
            {
                var hint = Suggest.Closest(name, _declared.Keys);
                return (word, $"unknown flag: {name}" + (hint is null ? string.Empty : $" (did you mean {hint}?)"));
            }

            if (_values.ContainsKey(name) && kind != FlagKind.List)
                return (word, $"duplicate flag specified: {name}");
            switch (kind)
            {
                case FlagKind.Switch:
                    if (value is null)
                        value = "true";
                    else if (value.Equals("true", StringComparison.OrdinalIgnoreCase) || value.Equals("false", StringComparison.OrdinalIgnoreCase))
                        value = value.ToLowerInvariant();
                    else
                        return (word, $"expecting boolean value for flag {name}, not: {value}");
                    break;
                default:
                    if (value is null)
                        return (word, $"missing a value on flag: {name}");
                    break;
            }

            if (!_values.TryGetValue(name, out var list))
                _values[name] = list = [];
            list.Add(value);
        }

        return null;
    }

    public string? String(string name) => _values.TryGetValue(name, out var v) ? v[^1] : null;

    public bool Bool(string name) => String(name) == "true";

    public bool? OptionalBool(string name) => _values.ContainsKey(name) ? Bool(name) : null;

    public IReadOnlyList<string> Strings(string name) => _values.TryGetValue(name, out var v) ? v : [];
}

/// <summary>"Did you mean" hints by edit distance.</summary>
internal static class Suggest
{
    public static string? Closest(string word, IEnumerable<string> candidates)
    {
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var c in candidates)
        {
            var d = Distance(word.ToLowerInvariant(), c.ToLowerInvariant());
            if (d < bestDistance)
            {
                bestDistance = d;
                best = c;
            }
        }

        return best is not null && bestDistance <= (word.Length <= 3 ? 1 : 2) ? best : null;
    }

    private static int Distance(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
            prev[j] = j;
        for (var i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (var j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }

        return prev[b.Length];
    }
}
