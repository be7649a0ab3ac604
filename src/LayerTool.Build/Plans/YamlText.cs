using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace LayerTool.Build.Plans;

/// <summary>A node of the YAML the exports write: a map (keys in order), a list, or a string.</summary>
internal abstract record YamlValue
{
    public static implicit operator YamlValue(string value) => new YamlString(value);
}

internal sealed record YamlMap(IReadOnlyList<KeyValuePair<string, YamlValue>> Entries) : YamlValue
{
    public static YamlMap Of(params (string Key, YamlValue? Value)[] entries) =>
        new([.. entries.Where(e => e.Value is not null).Select(e => KeyValuePair.Create(e.Key, e.Value!))]);
}

internal sealed record YamlList(IReadOnlyList<YamlValue> Items) : YamlValue
{
    public static YamlList Of(params YamlValue[] items) => new(items);

    public static YamlList Of(IEnumerable<YamlValue> items) => new([.. items]);
}

/// <summary>A YAML boolean.</summary>
internal sealed record YamlBool(bool Value) : YamlValue;

/// <summary>A string; <see cref="Block"/> writes a multi-line one as a literal block (<c>|</c>).</summary>
internal sealed record YamlString(string Value, bool Block = false) : YamlValue;

/// <summary>
/// Writes <see cref="YamlValue"/> trees as block-style YAML. Every string that could read as anything but the
/// same string (a number, a boolean, null, something with YAML punctuation) is double-quoted with JSON escapes,
/// which YAML's double-quoted style reads back the same; so the output never depends on a reader's YAML version.
/// </summary>
internal static partial class YamlText
{
    [GeneratedRegex(@"^[A-Za-z_./$]")]
    private static partial Regex PlainStart();

    [GeneratedRegex(@"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|null|Null|NULL|\.inf|\.Inf|\.INF|\.nan|\.NaN|\.NAN)$")]
    private static partial Regex Keyword();

    public static string Write(YamlValue root, IEnumerable<string>? headerComments = null)
    {
        var text = new StringBuilder();
        foreach (var line in headerComments ?? [])
            text.Append(line.Length == 0 ? "#" : "# " + line).Append('\n');
        if (root is YamlMap map)
            WriteMapBody(text, map, 0);
        else
            text.Append(Inline(root)).Append('\n');
        return text.ToString();
    }

    private static void WriteMapBody(StringBuilder text, YamlMap map, int indent)
    {
        foreach (var (key, value) in map.Entries)
        {
            text.Append(' ', indent).Append(Scalar(key)).Append(':');
            WriteAfterKey(text, value, indent);
        }
    }

    private static void WriteAfterKey(StringBuilder text, YamlValue value, int indent)
    {
        switch (value)
        {
            case YamlMap { Entries.Count: > 0 } m:
                text.Append('\n');
                WriteMapBody(text, m, indent + 2);
                break;
            case YamlList { Items.Count: > 0 } l:
                text.Append('\n');
                WriteListBody(text, l, indent + 2);
                break;
            case YamlString { Block: true } s when s.Value.Contains('\n', StringComparison.Ordinal):
                WriteBlock(text, s.Value, indent + 2);
                break;
            default:
                text.Append(' ').Append(Inline(value)).Append('\n');
                break;
        }
    }

    private static void WriteListBody(StringBuilder text, YamlList list, int indent)
    {
        foreach (var item in list.Items)
        {
            text.Append(' ', indent).Append('-');
            if (item is YamlMap { Entries.Count: > 0 } m)
            {
                // The first entry on the dash's line, the others below it.
                var (firstKey, firstValue) = m.Entries[0];
                text.Append(' ').Append(Scalar(firstKey)).Append(':');
                WriteAfterKey(text, firstValue, indent + 2);
                WriteMapBody(text, new YamlMap([.. m.Entries.Skip(1)]), indent + 2);
            }
            else
            {
                // Anything else follows the dash as a value follows its key.
                WriteAfterKey(text, item, indent);
            }
        }
    }

    /// <summary>A literal block (<c>|</c> keeps the final newline, <c>|-</c> strips it).</summary>
    private static void WriteBlock(StringBuilder text, string value, int indent)
    {
        var keepNewline = value.EndsWith('\n');
        var body = keepNewline ? value[..^1] : value;
        // A first line starting with a space would need an indentation indicator: quote instead.
        if (body.StartsWith(' ') || body.Split('\n').Any(l => l.EndsWith(' ') || l.Contains('\t', StringComparison.Ordinal)))
        {
            text.Append(' ').Append(Quoted(value)).Append('\n');
            return;
        }

        text.Append(keepNewline ? " |\n" : " |-\n");
        foreach (var line in body.Split('\n'))
        {
            if (line.Length > 0) text.Append(' ', indent).Append(line);
            text.Append('\n');
        }
    }

    private static string Inline(YamlValue value) => value switch
    {
        YamlMap => "{}",
        YamlList => "[]",
        YamlString s => Scalar(s.Value),
        YamlBool b => b.Value ? "true" : "false",
        _ => throw new ArgumentOutOfRangeException(nameof(value)),
    };

    /// <summary>The string plain when it reads back as the same string, else double-quoted.</summary>
    public static string Scalar(string value) => IsPlainSafe(value) ? value : Quoted(value);

    /// <summary>
    /// True when <paramref name="value"/> can be written as a plain scalar in block context and read back as the
    /// same string: printable ASCII, starting with a letter, <c>_</c>, <c>.</c>, <c>/</c> or <c>$</c> (never an
    /// indicator or a digit), no <c>": "</c> or <c>" #"</c> inside, no space or <c>:</c> at the end, and not a
    /// word YAML reads as a boolean, null or special float.
    /// </summary>
    private static bool IsPlainSafe(string value) =>
        value.Length > 0
        && PlainStart().IsMatch(value)
        && value.All(c => c is >= ' ' and < '\u007f')
        && !value.Contains(": ", StringComparison.Ordinal)
        && !value.Contains(" #", StringComparison.Ordinal)
        && value[^1] is not (' ' or ':')
        && !Keyword().IsMatch(value);

    private static string Quoted(string value) =>
        "\"" + JsonEncodedText.Encode(value, JavaScriptEncoder.UnsafeRelaxedJsonEscaping).ToString() + "\"";
}
