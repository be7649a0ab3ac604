using System.Globalization;
using System.Text;

namespace LayerTool.Build.Plans;

/// <summary>The formats of <c>layertool plan graph</c>.</summary>
public enum PlanGraphFormat
{
    /// <summary>Levels in topological order, each image with its parents and why.</summary>
    Text,

    /// <summary>Graphviz DOT.</summary>
    Dot,

    /// <summary>A Mermaid flowchart.</summary>
    Mermaid,
}

/// <summary>Writes a <see cref="PlanGraph"/> as text, DOT or Mermaid. Pure.</summary>
public static class PlanGraphFormatter
{
    public static string Format(PlanGraph graph, PlanGraphFormat format)
    {
        ArgumentNullException.ThrowIfNull(graph);
        return format switch
        {
            PlanGraphFormat.Dot => Dot(graph),
            PlanGraphFormat.Mermaid => Mermaid(graph),
            _ => Text(graph),
        };
    }

    /// <summary>The reasons for each (parent, child) pair, joined: <c>FROM base, COPY --from base:1.0</c>.</summary>
    private static IEnumerable<(string Parent, string Child, string Why)> Pairs(PlanGraph graph) =>
        graph.Order.SelectMany(child => graph.Parents(child.Name).Select(parent => (parent.Name, child.Name, string.Join(", ",
            graph.Edges.Where(e => e.Parent == parent.Name && e.Child == child.Name)
                .Select(e => e.Kind == PlanEdgeKind.DependsOn ? e.Why : $"{e.Why} {e.Reference}")))));

    private static string Text(PlanGraph graph)
    {
        var text = new StringBuilder();
        var plan = graph.Plan;
        var dependencies = graph.Edges.Select(e => (e.Parent, e.Child)).Distinct().Count();
        text.Append(CultureInfo.InvariantCulture, $"{Count(plan.Images.Count, "image", "images")}, {Count(dependencies, "dependency", "dependencies")}, {Count(graph.Levels.Count, "level", "levels")}");
        if (plan.Registry is not null) text.Append(", registry ").Append(plan.Registry);
        text.Append('\n');
        var pairs = Pairs(graph).ToList();
        var width = plan.Images.Max(i => i.Name.Length);
        for (var level = 0; level < graph.Levels.Count; level++)
        {
            text.Append(CultureInfo.InvariantCulture, $"level {level}:\n");
            foreach (var image in graph.Levels[level])
            {
                text.Append("  ").Append(image.Name);
                var parents = pairs.Where(p => p.Child == image.Name).ToList();
                if (parents.Count > 0)
                {
                    text.Append(' ', width - image.Name.Length).Append("  <- ")
                        .AppendJoin("; ", parents.Select(p => $"{p.Parent} ({p.Why})"));
                }

                text.Append('\n');
            }
        }

        return text.ToString();
    }

    private static string Count(int n, string one, string many) => n.ToString(CultureInfo.InvariantCulture) + " " + (n == 1 ? one : many);

    private static string Dot(PlanGraph graph)
    {
        static string Id(string s) => "\"" + s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
        var text = new StringBuilder("digraph plan {\n  rankdir=TB;\n  node [shape=box];\n");
        for (var level = 0; level < graph.Levels.Count; level++)
        {
            text.Append("  { rank=same;");
            foreach (var image in graph.Levels[level]) text.Append(' ').Append(Id(image.Name)).Append(';');
            text.Append(" }\n");
        }

        foreach (var (parent, child, why) in Pairs(graph))
            text.Append(CultureInfo.InvariantCulture, $"  {Id(parent)} -> {Id(child)} [label={Id(why)}];\n");
        return text.Append("}\n").ToString();
    }

    private static string Mermaid(PlanGraph graph)
    {
        // Node ids are n0, n1, ... (an image name may hold characters Mermaid ids cannot); labels are quoted, with
        // Mermaid's entity codes for the characters that would end them.
        static string Label(string s) => s.Replace("\"", "#quot;", StringComparison.Ordinal).Replace("|", "#124;", StringComparison.Ordinal);
        var ids = graph.Order.Select((image, i) => (image.Name, Id: "n" + i.ToString(CultureInfo.InvariantCulture)))
            .ToDictionary(x => x.Name, x => x.Id, StringComparer.Ordinal);
        var text = new StringBuilder("flowchart TD\n");
        foreach (var image in graph.Order)
            text.Append(CultureInfo.InvariantCulture, $"  {ids[image.Name]}[\"{Label(image.Name)}\"]\n");
        foreach (var (parent, child, why) in Pairs(graph))
            text.Append(CultureInfo.InvariantCulture, $"  {ids[parent]} -->|\"{Label(why)}\"| {ids[child]}\n");
        return text.ToString();
    }
}
