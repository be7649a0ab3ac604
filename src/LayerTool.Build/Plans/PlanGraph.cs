using LayerTool.Dockerfile.Instructions;

namespace LayerTool.Build.Plans;

/// <summary>A cycle found in a graph: the names in order, the first repeated at the end (<c>a, b, a</c>).</summary>
/// <param name="Names">The cycle, closed.</param>
/// <param name="Closing">The edge that closes it (from the last name but one to the last).</param>
public sealed record PlanCycle(IReadOnlyList<string> Names, PlanEdge Closing);

/// <summary>
/// The dependency graph of a plan: edges inferred from each image's Dockerfile (<c>FROM</c>, <c>COPY --from</c>,
/// <c>RUN --mount=from=</c> naming another plan image, see <see cref="PlanReferenceFinder"/>) plus
/// <c>depends_on</c>; a topological order (file order among images that are ready together), levels (0: no
/// parents; else one more than the deepest parent), and the references a runner rewrites. Built with
/// <see cref="Build"/>, which refuses cycles (<c>a -&gt; b -&gt; a</c>) and Dockerfiles it cannot read.
/// Immutable. The design is docs/design/plans.md.
/// </summary>
public sealed class PlanGraph
{
    private readonly Dictionary<string, PlanImage> _byName;
    private readonly Dictionary<string, int> _levels;
    private readonly Dictionary<string, IReadOnlyList<PlanReference>> _references;

    private PlanGraph(PlanFile plan, IReadOnlyList<PlanEdge> edges, IReadOnlyList<PlanImage> order, Dictionary<string, int> levels,
        Dictionary<string, IReadOnlyList<PlanReference>> references)
    {
        Plan = plan;
        Edges = edges;
        Order = order;
        _levels = levels;
        _references = references;
        _byName = plan.Images.ToDictionary(i => i.Name, StringComparer.Ordinal);
        Levels = [.. order.GroupBy(i => levels[i.Name]).OrderBy(g => g.Key).Select(g => (IReadOnlyList<PlanImage>)g.ToList())];
    }

    public PlanFile Plan { get; }

    /// <summary>Every edge, each reason apart (an image may reach a parent by FROM and COPY --from), in the child's file order.</summary>
    public IReadOnlyList<PlanEdge> Edges { get; }

    /// <summary>The images in a topological order: parents before children; among images ready at once, file order.</summary>
    public IReadOnlyList<PlanImage> Order { get; }

    /// <summary>The images by level: level 0 has no parents; an image is one level below its deepest parent.</summary>
    public IReadOnlyList<IReadOnlyList<PlanImage>> Levels { get; }

    /// <summary>Reads the plan file and builds its graph (see <see cref="PlanLoader.Load(string, string?)"/>).</summary>
    public static PlanGraph Load(string path, string? workingDirectory = null) => Build(PlanLoader.Load(path, workingDirectory));

    /// <summary>The image called <paramref name="name"/>.</summary>
    public PlanImage this[string name] => _byName.TryGetValue(name, out var image) ? image : throw new KeyNotFoundException($"no image {name} in the plan");

    /// <summary>The level of <paramref name="name"/> (0: no parents).</summary>
    public int Level(string name) => _levels[this[name].Name];

    /// <summary>The images <paramref name="name"/> needs directly, in file order.</summary>
    public IReadOnlyList<PlanImage> Parents(string name)
    {
        var parents = Edges.Where(e => e.Child == this[name].Name).Select(e => e.Parent).ToHashSet(StringComparer.Ordinal);
        return [.. Plan.Images.Where(i => parents.Contains(i.Name))];
    }

    /// <summary>The images that need <paramref name="name"/> directly, in file order.</summary>
    public IReadOnlyList<PlanImage> Children(string name)
    {
        var children = Edges.Where(e => e.Parent == this[name].Name).Select(e => e.Child).ToHashSet(StringComparer.Ordinal);
        return [.. Plan.Images.Where(i => children.Contains(i.Name))];
    }

    /// <summary>Everything below <paramref name="name"/> (children, their children, ...), in topological order; itself excluded.</summary>
    public IReadOnlyList<PlanImage> Descendants(string name) => Reach(name, Children);

    /// <summary>Everything <paramref name="name"/> needs, transitively, in topological order; itself excluded.</summary>
    public IReadOnlyList<PlanImage> Ancestors(string name) => Reach(name, Parents);

    /// <summary>The places in <paramref name="name"/>'s Dockerfile that name other plan images (what a runner rewrites).</summary>
    public IReadOnlyList<PlanReference> References(string name) => _references[this[name].Name];

    /// <summary>
    /// Builds the graph of <paramref name="plan"/>: reads each image's Dockerfile (with its args and target),
    /// infers the edges, adds depends_on, and orders the images.
    /// </summary>
    /// <exception cref="PlanException">A Dockerfile cannot be read or parsed, a target stage is missing, or the
    /// edges make a cycle.</exception>
    public static PlanGraph Build(PlanFile plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var names = new Dictionary<string, PlanImage>(StringComparer.Ordinal);
        foreach (var image in plan.Images)
        {
            foreach (var reference in image.Tags.Prepend(image.Name))
                names.TryAdd(ImageReferenceSyntax.Normalize(reference), image);
        }

        PlanImage? Lookup(string reference) =>
            ImageReferenceSyntax.Validate(reference) is null && names.TryGetValue(ImageReferenceSyntax.Normalize(reference), out var image) ? image : null;

        var edges = new List<PlanEdge>();
        var references = new Dictionary<string, IReadOnlyList<PlanReference>>(StringComparer.Ordinal);
        foreach (var image in plan.Images)
        {
            var found = PlanReferenceFinder.Find(image, Lookup);
            references[image.Name] = found;
            foreach (var reference in found.DistinctBy(x => (x.Parent, x.Kind, x.Reference)))
                edges.Add(new PlanEdge(reference.Parent, image.Name, reference.Kind, reference.Reference, image.Location));
            for (var i = 0; i < image.DependsOn.Count; i++)
            {
                var location = i < image.DependsOnLocations.Count ? image.DependsOnLocations[i] : image.Location;
                if (!plan.Images.Any(p => p.Name == image.DependsOn[i]))
                    throw new PlanException(location, $"image {image.Name}: depends_on names '{image.DependsOn[i]}', which is not an image of this plan");
                edges.Add(new PlanEdge(image.DependsOn[i], image.Name, PlanEdgeKind.DependsOn, image.DependsOn[i], location));
            }
        }

        if (FindCycle(plan.Images.Select(i => i.Name), edges) is { } cycle)
        {
            var why = cycle.Closing.Kind == PlanEdgeKind.DependsOn ? "depends_on" : $"{cycle.Closing.Why} {cycle.Closing.Reference}";
            throw new PlanException(cycle.Closing.Location, $"dependency cycle: {string.Join(" -> ", cycle.Names)} (image {cycle.Closing.Child}: {why})");
        }

        // Kahn's algorithm, taking the ready images in file order each round.
        var levels = new Dictionary<string, int>(StringComparer.Ordinal);
        var order = new List<PlanImage>();
        var parentsOf = plan.Images.ToDictionary(i => i.Name, i => edges.Where(e => e.Child == i.Name).Select(e => e.Parent).ToHashSet(StringComparer.Ordinal), StringComparer.Ordinal);
        var remaining = plan.Images.ToList();
        while (remaining.Count > 0)
        {
            var ready = remaining.Where(i => parentsOf[i.Name].All(levels.ContainsKey)).ToList();
            foreach (var image in ready)
            {
                levels[image.Name] = parentsOf[image.Name].Count == 0 ? 0 : parentsOf[image.Name].Max(p => levels[p]) + 1;
                order.Add(image);
                remaining.Remove(image);
            }
        }

        return new PlanGraph(plan, edges, order, levels, references);
    }

    /// <summary>A cycle among <paramref name="edges"/> (parent to child), or null. Deterministic: nodes and edges are tried in the order given.</summary>
    public static PlanCycle? FindCycle(IEnumerable<string> nodes, IEnumerable<PlanEdge> edges)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        ArgumentNullException.ThrowIfNull(edges);
        var outgoing = edges.GroupBy(e => e.Parent, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var state = new Dictionary<string, int>(StringComparer.Ordinal); // 1: on the path, 2: done
        var path = new List<(string Node, PlanEdge? Via)>();

        PlanCycle? Visit(string node, PlanEdge? via)
        {
            state[node] = 1;
            path.Add((node, via));
            foreach (var edge in outgoing.GetValueOrDefault(node) ?? [])
            {
                var next = edge.Child;
                if (state.GetValueOrDefault(next) == 1)
                {
                    var start = path.FindIndex(p => p.Node == next);
                    return new PlanCycle([.. path.Skip(start).Select(p => p.Node), next], edge);
                }

                if (state.GetValueOrDefault(next) == 0 && Visit(next, edge) is { } found)
                    return found;
            }

            path.RemoveAt(path.Count - 1);
            state[node] = 2;
            return null;
        }

        foreach (var node in nodes)
        {
            if (state.GetValueOrDefault(node) == 0 && Visit(node, null) is { } cycle)
                return cycle;
        }

        return null;
    }

    private List<PlanImage> Reach(string name, Func<string, IReadOnlyList<PlanImage>> step)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var queue = new Queue<string>([this[name].Name]);
        while (queue.Count > 0)
        {
            foreach (var next in step(queue.Dequeue()))
            {
                if (seen.Add(next.Name)) queue.Enqueue(next.Name);
            }
        }

        return [.. Order.Where(i => seen.Contains(i.Name))];
    }
}
