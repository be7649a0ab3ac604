using System.Text;
using LayerTool.Dockerfile;

namespace LayerTool.Build.Plans;

/// <summary>
/// Rewrites the places a Dockerfile names plan images (<see cref="PlanGraph.References"/>) to other references,
/// for a runner that hands a parent to a child by <c>repo@digest</c> or under a tag of its own. The FROM image
/// word is replaced whole (also when it was written with variables: its value is known), a <c>--from=</c> flag
/// gets the new value, and a <c>--mount=</c> flag gets a new <c>from=</c> field. Everything else stays byte for
/// byte. Pure.
/// </summary>
public static class PlanDockerfileRewriter
{
    /// <summary>
    /// The Dockerfile <paramref name="text"/> with every reference in <paramref name="references"/> whose parent
    /// <paramref name="replacement"/> maps (to non-null) rewritten.
    /// </summary>
    /// <exception cref="PlanException">A reference is not where it was found (the text is not the one analysed),
    /// or is written in a way that cannot be rewritten in place (a quoted flag).</exception>
    public static string Rewrite(string text, IEnumerable<PlanReference> references, Func<string, string?> replacement)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(references);
        ArgumentNullException.ThrowIfNull(replacement);
        var lineStarts = new List<int> { 0 };
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '\n') lineStarts.Add(i + 1);
        }

        // Right to left, so earlier offsets stay valid.
        var edits = new List<(int Start, int Length, string Value)>();
        foreach (var reference in references)
        {
            if (replacement(reference.Parent) is not { } value) continue;
            var offset = Offset(lineStarts, reference.Position, text);
            if (offset > text.Length) throw Mismatch(reference);
            edits.Add(reference.Kind switch
            {
                PlanEdgeKind.From => Word(text, offset, reference.Written, reference, value),
                PlanEdgeKind.CopyFrom => Flag(text, offset, "--from=", reference, _ => value),
                PlanEdgeKind.MountFrom => Flag(text, offset, "--mount=", reference, mount => ReplaceMountFrom(mount, value, reference)),
                _ => throw new ArgumentException($"a {reference.Kind} reference is not in a Dockerfile", nameof(references)),
            });
        }

        var result = new StringBuilder(text);
        foreach (var (start, length, value) in edits.OrderByDescending(e => e.Start))
            result.Remove(start, length).Insert(start, value);
        return result.ToString();
    }

    private static int Offset(List<int> lineStarts, SourcePosition position, string text)
    {
        if (position.Line < 1 || position.Line > lineStarts.Count)
            throw new PlanException($"Dockerfile line {position.Line} is not in the text to rewrite");
        var offset = lineStarts[position.Line - 1] + position.Column - 1;
        // A byte-order mark on the first line is not a column.
        if (position.Line == 1 && text.Length > 0 && text[0] == '\uFEFF') offset++;
        return offset;
    }

    private static (int, int, string) Word(string text, int offset, string written, PlanReference reference, string value)
    {
        if (string.CompareOrdinal(text, offset, written, 0, written.Length) != 0)
            throw Mismatch(reference);
        return (offset, written.Length, value);
    }

    private static (int, int, string) Flag(string text, int offset, string prefix, PlanReference reference, Func<string, string> rewrite)
    {
        if (string.Compare(text, offset, prefix, 0, prefix.Length, StringComparison.OrdinalIgnoreCase) != 0)
            throw Mismatch(reference);
        var start = offset + prefix.Length;
        var end = start;
        while (end < text.Length && !char.IsWhiteSpace(text[end])) end++;
        var current = text[start..end];
        if (current.Contains('"', StringComparison.Ordinal) || current.Contains('\'', StringComparison.Ordinal))
            throw new PlanException($"line {reference.Position.Line}: a quoted {prefix.TrimEnd('=')} flag naming {reference.Parent} cannot be rewritten; write it without quotes");
        return (start, end - start, rewrite(current));
    }

    private static string ReplaceMountFrom(string mount, string value, PlanReference reference)
    {
        var fields = mount.Split(',');
        var index = Array.FindIndex(fields, f => f.TrimStart().StartsWith("from=", StringComparison.OrdinalIgnoreCase));
        if (index < 0) throw Mismatch(reference);
        fields[index] = "from=" + value;
        return string.Join(',', fields);
    }

    private static PlanException Mismatch(PlanReference reference) =>
        new($"line {reference.Position}: the Dockerfile does not name {reference.Parent} there ({PlanEdge.KindText(reference.Kind)} {reference.Written}); it changed since it was read");
}
