using System.Text.Json.Nodes;
using LayerTool.Image.Layers;

namespace LayerTool.Image.Rebase;

/// <summary>What a rebase found: the file conflicts and the base config differences, and what it made.</summary>
/// <param name="Image">The image as named by the user.</param>
/// <param name="OldBase">The old base as named (or found).</param>
/// <param name="OldBaseFoundBy">How the old base was found: <c>--from</c>, <c>label</c>, <c>annotation</c> or <c>prefix</c>.</param>
/// <param name="NewBase">The new base as named.</param>
/// <param name="Files">Paths the new base changes that the image's layers hide or meet.</param>
/// <param name="Config">Runtime-config fields the bases differ in.</param>
public sealed record RebaseReport(string Image, string OldBase, string OldBaseFoundBy, string NewBase, IReadOnlyList<FileConflict> Files,
    IReadOnlyList<ConfigDifference> Config)
{
    /// <summary>The conflicts: hidden patches (not <see cref="FileConflictKind.Info"/>) and inherited config changes not taken.</summary>
    public int ConflictCount => Files.Count(f => f.Kind != FileConflictKind.Info) + Config.Count(c => c.IsConflict);

    /// <summary>The report as JSON (stable field names, kinds in lower case).</summary>
    public JsonObject ToJson()
    {
        var files = new JsonArray();
        foreach (var f in Files)
        {
            var item = new JsonObject
            {
                ["path"] = "/" + f.Path,
                ["kind"] = Lower(f.Kind),
                ["baseChange"] = Lower(f.BaseChange),
                ["layer"] = f.Layer,
            };
            if (f.Detail is not null) item["detail"] = f.Detail;
            files.Add((JsonNode)item);
        }

        var config = new JsonArray();
        foreach (var c in Config)
        {
            config.Add((JsonNode)new JsonObject
            {
                ["key"] = c.Key,
                ["kind"] = c.IsConflict ? "config" : c.Applied ? "applied" : "info",
                ["oldBase"] = c.OldBase,
                ["newBase"] = c.NewBase,
                ["image"] = c.Image,
                ["inherited"] = c.Inherited,
                ["applied"] = c.Applied,
            });
        }

        return new JsonObject
        {
            ["image"] = Image,
            ["oldBase"] = OldBase,
            ["oldBaseFoundBy"] = OldBaseFoundBy,
            ["newBase"] = NewBase,
            ["conflicts"] = ConflictCount,
            ["files"] = files,
            ["config"] = config,
        };
    }

    /// <summary>The report as text lines, one per finding: <c>KIND /path (new base: CHANGE; layer N)</c>.</summary>
    public IEnumerable<string> ToLines()
    {
        foreach (var f in Files)
        {
            var detail = f.Detail is null ? "" : $", {f.Detail}";
            yield return $"{Lower(f.Kind),-11} /{f.Path} (new base: {Lower(f.BaseChange)}{detail}; own layer {f.Layer})";
        }

        foreach (var c in Config)
        {
            var kind = c.IsConflict ? "config" : c.Applied ? "applied" : "info";
            var why = c.Applied ? "taken from the new base"
                : c.Inherited ? "the image keeps the old base's value; --take-base-config " + c.Key + " takes the new one"
                : "the image sets its own value";
            yield return $"{kind,-11} {c.Key}: {c.OldBase ?? "(unset)"} -> {c.NewBase ?? "(unset)"} ({why})";
        }
    }

    private static string Lower<T>(T value)
        where T : struct, Enum => value.ToString().ToLowerInvariant();
}
