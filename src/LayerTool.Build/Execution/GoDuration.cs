using System.Globalization;
using System.Text.RegularExpressions;

namespace LayerTool.Build.Execution;

/// <summary>Parses Go duration strings (<c>1m30s</c>, <c>500ms</c>) as HEALTHCHECK flags take them.</summary>
internal static partial class GoDuration
{
    [GeneratedRegex(@"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")]
    private static partial Regex Part();

    public static long ParseNanoseconds(string text)
    {
        if (text == "0") return 0;
        var total = 0.0;
        var consumed = 0;
        foreach (Match m in Part().Matches(text))
        {
            if (m.Index != consumed) break;
            consumed += m.Length;
            var n = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            total += n * m.Groups[2].Value switch
            {
                "ns" => 1,
                "us" or "µs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "m" => 60e9,
                _ => 3600e9,
            };
        }
        if (consumed != text.Length || text.Length == 0) throw new FormatException($"time: invalid duration \"{text}\"");
        return (long)total;
    }
}
