using LayerTool.Dockerfile;
using LayerTool.Dockerfile.Instructions;
using LayerTool.Dockerfile.Model;
using LayerTool.Dockerfile.Shell;

namespace LayerTool.Build.Plans;

/// <summary>Why one image depends on another.</summary>
public enum PlanEdgeKind
{
    /// <summary><c>FROM parent</c>.</summary>
    From,

    /// <summary><c>COPY --from=parent</c>.</summary>
    CopyFrom,

    /// <summary><c>RUN --mount=...,from=parent</c>.</summary>
    MountFrom,

    /// <summary><c>depends_on:</c> in the plan file.</summary>
    DependsOn,
}

/// <summary>One edge of the plan's graph: <see cref="Child"/> needs <see cref="Parent"/> built first.</summary>
/// <param name="Parent">The image built first.</param>
/// <param name="Child">The image that needs it.</param>
/// <param name="Kind">Why.</param>
/// <param name="Reference">The name the child used for the parent, after expansion (the parent's name for depends_on).</param>
/// <param name="Location">Where the edge is written: the depends_on entry in the plan file; for an inferred
/// edge, the child's declaration (the Dockerfile place is in <see cref="PlanReference"/>).</param>
public sealed record PlanEdge(string Parent, string Child, PlanEdgeKind Kind, string Reference, PlanLocation Location)
{
    /// <summary>How the edge reads in <c>plan graph</c>: <c>FROM</c>, <c>COPY --from</c>, <c>RUN --mount</c>, <c>depends_on</c>.</summary>
    public string Why => KindText(Kind);

    /// <summary>The words of <paramref name="kind"/>.</summary>
    public static string KindText(PlanEdgeKind kind) => kind switch
    {
        PlanEdgeKind.From => "FROM",
        PlanEdgeKind.CopyFrom => "COPY --from",
        PlanEdgeKind.MountFrom => "RUN --mount",
        _ => "depends_on",
    };
}

/// <summary>
/// A place in an image's Dockerfile that names another plan image: what a runner substitutes (a local tag,
/// <c>repo@digest</c>) when the parent was built elsewhere. See <see cref="PlanDockerfileRewriter"/>.
/// </summary>
/// <param name="Parent">The plan image named.</param>
/// <param name="Kind"><see cref="PlanEdgeKind.From"/>, <see cref="PlanEdgeKind.CopyFrom"/> or <see cref="PlanEdgeKind.MountFrom"/>.</param>
/// <param name="Reference">The reference after ARG expansion (<c>base</c>, <c>team/base:1.0</c>).</param>
/// <param name="Written">The word as written: the FROM image word, the <c>--from</c> value, or the <c>--mount</c> flag's value.</param>
/// <param name="Stage">The 0-based stage it is in.</param>
/// <param name="Position">Where the word starts in the Dockerfile (the FROM image word, the <c>--from=</c> or <c>--mount=</c> flag).</param>
public sealed record PlanReference(string Parent, PlanEdgeKind Kind, string Reference, string Written, int Stage, SourcePosition Position);

/// <summary>
/// Finds the references to plan images in one image's Dockerfile. Reads only the stages the build needs (the
/// target and, transitively, the stages it uses), as BuildKit does. A <c>FROM x</c> (expanded with the meta
/// ARGs and the image's args), <c>COPY --from=x</c> or <c>RUN --mount=from=x</c> (expanded with the stage's ARG
/// and ENV) names a plan image when x is not a stage of the file and equals the image's name or one of its tags
/// (<c>base</c> and <c>base:latest</c> are the same).
/// </summary>
internal static class PlanReferenceFinder
{
    public static IReadOnlyList<PlanReference> Find(PlanImage image, Func<string, PlanImage?> planImage)
    {
        string text;
        try
        {
            text = File.ReadAllText(image.Dockerfile);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new PlanException(image.Location, $"image {image.Name}: cannot read the Dockerfile {image.Dockerfile}: {e.Message}", e);
        }

        var fileName = Path.GetFileName(image.Dockerfile);
        DockerfileModel model;
        try
        {
            model = DockerfileModel.Parse(text, image.Dockerfile);
        }
        catch (DockerfileException e)
        {
            throw new PlanException(image.Location, $"image {image.Name}: {e.Message}", e);
        }

        if (model.Stages.Count == 0)
            throw new PlanException(image.Location, $"image {image.Name}: {fileName} has no FROM");
        var expander = model.CreateExpander();
        string Expand(string word, IVariableLookup lookup, Instruction at)
        {
            try
            {
                return expander.ExpandWord(word, lookup);
            }
            catch (ShellExpansionException e)
            {
                throw new PlanException(image.Location, $"image {image.Name}: {image.Dockerfile}:{at.Position}: {e.Message}", e);
            }
        }

        var state = VariableState.Create(image.BuildArgs);
        foreach (var meta in model.MetaArgs)
        {
            var before = state;
            state = Apply(() => before.Apply(meta, expander), image, meta);
        }

        state = state.EndMetaScope();
        var perStage = new List<(List<int> Stages, List<PlanReference> Refs)>();
        foreach (var stage in model.Stages)
        {
            var stageDeps = new List<int>();
            var refs = new List<PlanReference>();
            void Name(string written, string value, PlanEdgeKind kind, SourcePosition at, bool forFrom)
            {
                // A stage wins over an image of the same name: FROM sees the stages above it; --from any stage by
                // name, and a number is a stage index.
                var stageRef = model.Stages.FirstOrDefault(s => (forFrom ? s.Index < stage.Index : s.Index != stage.Index) && s.Name is not null
                    && string.Equals(s.Name, value, StringComparison.OrdinalIgnoreCase));
                if (stageRef is null && !forFrom && int.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var index) && index < model.Stages.Count)
                    stageRef = model.Stages[index];
                if (stageRef is not null)
                {
                    stageDeps.Add(stageRef.Index);
                    return;
                }

                if (planImage(value) is { } parent)
                    refs.Add(new PlanReference(parent.Name, kind, value, written, stage.Index, at));
            }

            var fromInstruction = stage.From;
            Name(fromInstruction.BaseName, Expand(fromInstruction.BaseName, state.GlobalLookup, fromInstruction), PlanEdgeKind.From,
                fromInstruction.Node.Arguments.Count > 0 ? fromInstruction.Node.Arguments[0].Position : fromInstruction.Position, forFrom: true);
            var s = state.ForNewStage();
            foreach (var instruction in stage.Instructions)
            {
                var before = s;
                switch (instruction)
                {
                    case ArgInstruction a:
                        s = Apply(() => before.Apply(a, expander), image, a);
                        break;
                    case EnvInstruction e:
                        s = Apply(() => before.Apply(e, expander), image, e);
                        break;
                    case CopyInstruction { From: { } copyFrom } copy:
                        Name(copyFrom, Expand(copyFrom, s.Lookup, copy), PlanEdgeKind.CopyFrom, FlagPosition(copy, "--from"), forFrom: false);
                        break;
                    case RunInstruction run:
                        foreach (var mount in run.Mounts)
                        {
                            if (MountFrom(mount) is { } mountFrom)
                                Name(mount, Expand(mountFrom, s.Lookup, run), PlanEdgeKind.MountFrom, FlagPosition(run, "--mount", mount), forFrom: false);
                        }

                        break;
                }
            }

            perStage.Add((stageDeps, refs));
        }

        var target = model.Stages[^1];
        if (image.Target is { } name)
        {
            target = model.FindStage(name) ?? throw new PlanException(image.Location,
                $"image {image.Name}: target stage '{name}' is not in {image.Dockerfile}");
        }

        var needed = new SortedSet<int>();
        var queue = new Queue<int>([target.Index]);
        while (queue.Count > 0)
        {
            var index = queue.Dequeue();
            if (!needed.Add(index)) continue;
            foreach (var dep in perStage[index].Stages) queue.Enqueue(dep);
        }

        return [.. needed.SelectMany(i => perStage[i].Refs)];
    }

    private static VariableState Apply(Func<VariableState> apply, PlanImage image, Instruction at)
    {
        try
        {
            return apply();
        }
        catch (ShellExpansionException e)
        {
            throw new PlanException(image.Location, $"image {image.Name}: {image.Dockerfile}:{at.Position}: {e.Message}", e);
        }
    }

    /// <summary>The <c>from=</c> field of a <c>--mount</c> value (CSV of key=value), or null.</summary>
    public static string? MountFrom(string mount)
    {
        foreach (var field in mount.Split(','))
        {
            var eq = field.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0 && field[..eq].Trim().Equals("from", StringComparison.OrdinalIgnoreCase))
                return field[(eq + 1)..].Trim();
        }

        return null;
    }

    private static SourcePosition FlagPosition(Instruction instruction, string flag, string? value = null)
    {
        var word = instruction.Node.Flags.FirstOrDefault(f =>
            f.Text.StartsWith(flag + "=", StringComparison.OrdinalIgnoreCase) && (value is null || f.Text[(flag.Length + 1)..] == value));
        return word?.Position ?? instruction.Position;
    }
}
