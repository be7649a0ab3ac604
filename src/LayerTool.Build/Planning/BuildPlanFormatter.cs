using System.Globalization;
using System.Text;
using System.Text.Json;

namespace LayerTool.Build.Planning;

/// <summary>What <c>layertool build --plan</c> prints: a line per step with its details, or JSON.</summary>
public static class BuildPlanFormatter
{
    /// <summary>
    /// The plan as text: a header, then per step its number, kind, stage and description, what it reads and
    /// which tags it gives, and for a build which of the user's lines it keeps, blanks and rewrites (the rewritten
    /// ones shown). With <paramref name="dockerfiles"/>, each build's Dockerfile follows (non-blank lines, numbered
    /// as the user's; <c>~</c> marks a rewritten line).
    /// </summary>
    public static string Text(BuildPlan plan, bool dockerfiles = false)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var source = plan.SourceText.Split('\n');
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"plan for {plan.FileName}, target {plan.Target}: {plan.Steps.Count} step{(plan.Steps.Count == 1 ? "" : "s")}");
        if (plan.Tags.Count > 0) sb.Append(CultureInfo.InvariantCulture, $", tagged {string.Join(' ', plan.Tags)}");
        sb.Append('\n');
        foreach (var step in plan.Steps)
        {
            sb.Append(CultureInfo.InvariantCulture, $"{step.Index + 1,3}  {KindName(step.Kind),-15} {step.Stage,-10} {step.Description}\n");
            var tags = step.Tags.Count == 0 ? "untagged" : string.Join(' ', step.Tags);
            var output = step.Output switch
            {
                PlanOutput.Temporary => $"{tags} (temporary)",
                PlanOutput.Tag => step.Tags.Any(plan.IsTemporary)
                    ? $"{string.Join(' ', step.Tags.Where(t => !plan.IsTemporary(t)))} (TAG, kept) and {string.Join(' ', step.Tags.Where(plan.IsTemporary))} (temporary)"
                    : $"{tags} (TAG, kept)",
                _ => $"{tags} (final)",
            };
            switch (step)
            {
                case PlanBuild b:
                {
                    sb.Append(CultureInfo.InvariantCulture, $"       target {b.Build.Target ?? "(last stage)"}; gives {output}");
                    if (b.ReplayOf is { } covering) sb.Append(CultureInfo.InvariantCulture, $"; replays step {covering + 1}'s fresh cache");
                    if (b.Build.Labels.Count > 0) sb.Append(CultureInfo.InvariantCulture, $"; labels {string.Join(' ', b.Build.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => l.Key + "=" + l.Value))}");
                    sb.Append('\n');
                    var generated = b.Build.Dockerfile.Split('\n');
                    var (kept, blanked, rewritten) = Compare(source, generated);
                    sb.Append(CultureInfo.InvariantCulture, $"       lines kept {Ranges(kept)}; blanked {Ranges(blanked)}");
                    sb.Append(rewritten.Count == 0 ? "\n" : "; rewritten " + Ranges(rewritten) + "\n");
                    if (dockerfiles)
                    {
                        for (var i = 0; i < generated.Length; i++)
                        {
                            var text = generated[i].TrimEnd('\r');
                            if (text.Trim().Length == 0) continue;
                            var mark = rewritten.Contains(i + 1) ? '~' : ' ';
                            sb.Append(CultureInfo.InvariantCulture, $"       |{mark}{i + 1,3} {text}\n");
                        }
                    }
                    else
                    {
                        foreach (var line in rewritten)
                            sb.Append(CultureInfo.InvariantCulture, $"       ~{line,3} {generated[line - 1].TrimEnd('\r')}\n");
                    }
                    break;
                }
                case PlanSquash s:
                    sb.Append(CultureInfo.InvariantCulture, $"       squash {Image(s.Image)} onto {(s.Base.IsScratch ? "scratch" : Image(s.Base))}; gives {output}\n");
                    break;
                case PlanConfig c:
                    if (c.Kind == PlanStepKind.ClearOnBuild)
                        sb.Append(CultureInfo.InvariantCulture, $"       {Image(c.Image)} without its ONBUILD triggers; gives {output}\n");
                    else
                        sb.Append(CultureInfo.InvariantCulture, $"       {Image(c.Image)} with the ONBUILD triggers of {Image(c.OnBuildFrom!)} before its own; gives {output}\n");
                    break;
            }
        }
        return sb.ToString();
    }

    /// <summary>The plan as one JSON object (steps with their generated Dockerfiles, build args, tags and inputs).</summary>
    public static string Json(BuildPlan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteString("buildId", plan.BuildId);
            json.WriteString("file", plan.FileName);
            json.WriteString("target", plan.Target);
            Strings(json, "tags", plan.Tags);
            Strings(json, "temporaryTags", plan.TemporaryTags);
            json.WriteStartArray("steps");
            foreach (var step in plan.Steps)
            {
                json.WriteStartObject();
                json.WriteNumber("index", step.Index);
                json.WriteString("kind", KindName(step.Kind));
                json.WriteString("description", step.Description);
                json.WriteString("stage", step.Stage);
                if (step.Line is { } line) json.WriteNumber("line", line);
                else json.WriteNull("line");
                json.WriteString("output", step.Output.ToString().ToLowerInvariant());
                Strings(json, "tags", step.Tags);
                switch (step)
                {
                    case PlanBuild b:
                        if (b.Build.Target is { } t) json.WriteString("target", t);
                        else json.WriteNull("target");
                        Map(json, "buildArgs", b.Build.BuildArgs);
                        Map(json, "labels", b.Build.Labels);
                        if (b.Build.NetworkMode is { } n) json.WriteString("network", n);
                        json.WriteBoolean("noCache", b.Build.NoCache);
                        if (b.ReplayOf is { } covering) json.WriteNumber("replayOf", covering + 1);
                        json.WriteString("dockerfile", b.Build.Dockerfile);
                        break;
                    case PlanSquash s:
                        ImageJson(json, "image", s.Image);
                        ImageJson(json, "base", s.Base);
                        json.WriteString("baseName", s.BaseDescription);
                        break;
                    case PlanConfig c:
                        ImageJson(json, "image", c.Image);
                        if (c.OnBuildFrom is { } from) ImageJson(json, "onBuildFrom", from);
                        break;
                }
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static string KindName(PlanStepKind kind) => kind switch
    {
        PlanStepKind.Build => "build",
        PlanStepKind.Squash => "squash",
        PlanStepKind.ClearOnBuild => "clear-onbuild",
        PlanStepKind.RestoreOnBuild => "restore-onbuild",
        _ => kind.ToString(),
    };

    private static string Image(PlanImage image) =>
        image.Step is { } s ? $"step {(s + 1).ToString(CultureInfo.InvariantCulture)}" : image.Reference ?? "scratch";

    private static void ImageJson(Utf8JsonWriter json, string name, PlanImage image)
    {
        json.WriteStartObject(name);
        if (image.Step is { } s) json.WriteNumber("step", s);
        else if (image.Reference is { } r) json.WriteString("reference", r);
        else json.WriteBoolean("scratch", true);
        json.WriteEndObject();
    }

    private static void Strings(Utf8JsonWriter json, string name, IEnumerable<string> values)
    {
        json.WriteStartArray(name);
        foreach (var v in values) json.WriteStringValue(v);
        json.WriteEndArray();
    }

    private static void Map(Utf8JsonWriter json, string name, IReadOnlyDictionary<string, string> values)
    {
        json.WriteStartObject(name);
        foreach (var (k, v) in values.OrderBy(kv => kv.Key, StringComparer.Ordinal)) json.WriteString(k, v);
        json.WriteEndObject();
    }

    /// <summary>Which of the user's non-blank lines a generated Dockerfile keeps, blanks, or rewrites (1-based).</summary>
    private static (List<int> Kept, List<int> Blanked, List<int> Rewritten) Compare(string[] source, string[] generated)
    {
        var kept = new List<int>();
        var blanked = new List<int>();
        var rewritten = new List<int>();
        for (var i = 0; i < generated.Length; i++)
        {
            var original = i < source.Length ? source[i] : "";
            if (generated[i] == original)
            {
                if (original.Trim().Length > 0) kept.Add(i + 1);
            }
            else if (generated[i].Trim().Length == 0)
            {
                blanked.Add(i + 1);
            }
            else
            {
                rewritten.Add(i + 1);
            }
        }
        return (kept, blanked, rewritten);
    }

    /// <summary><c>1-3,7,9-12</c>; <c>none</c> when empty.</summary>
    private static string Ranges(List<int> lines)
    {
        if (lines.Count == 0) return "none";
        var parts = new List<string>();
        var start = lines[0];
        var end = start;
        foreach (var l in lines.Skip(1))
        {
            if (l == end + 1)
            {
                end = l;
                continue;
            }
            parts.Add(start == end ? start.ToString(CultureInfo.InvariantCulture) : $"{start}-{end}");
            start = end = l;
        }
        parts.Add(start == end ? start.ToString(CultureInfo.InvariantCulture) : $"{start}-{end}");
        return string.Join(',', parts);
    }
}
