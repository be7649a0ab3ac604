using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using LayerTool.Dockerfile.Instructions;
using LayerTool.Dockerfile.Syntax;

namespace LayerTool.Dockerfile.Model;

/// <summary>
/// Stable text and JSON renderings of parsed Dockerfiles, for <c>layertool parse</c> and for golden tests.
/// Strings are JSON-quoted so white space and escapes are visible.
/// </summary>
public static class DockerfileDump
{
    /// <summary>A JSON string literal for <paramref name="s"/>.</summary>
    public static string Q(string s) => "\"" + JsonEncodedText.Encode(s, JavaScriptEncoder.UnsafeRelaxedJsonEscaping).Value + "\"";

    private static string List(IEnumerable<string> items) => "[" + string.Join(",", items.Select(Q)) + "]";

    /// <summary>One line per instruction (plus heredoc and trigger lines), then directives and diagnostics.</summary>
    public static string DumpSyntax(DockerfileSyntax syntax)
    {
        ArgumentNullException.ThrowIfNull(syntax);
        var sb = new StringBuilder();
        foreach (var d in syntax.Directives)
            sb.Append("directive ").Append(d.Name).Append('=').Append(Q(d.Value)).Append(" line ").Append(d.Line).Append('\n');
        foreach (var node in syntax.Instructions)
            AppendNode(sb, node, string.Empty, true);
        foreach (var d in syntax.Diagnostics)
            sb.Append(d.IsError ? "error " : "warning ").Append(d.Position).Append(": ").Append(d.Message).Append('\n');
        return sb.ToString();
    }

    /// <summary>The instruction line used by both dumps: <c>range KEYWORD flags form args</c>.</summary>
    public static string DescribeNode(InstructionNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        var sb = new StringBuilder();
        AppendNode(sb, node, string.Empty, false);
        return sb.ToString().TrimEnd('\n');
    }

    private static void AppendNode(StringBuilder sb, InstructionNode node, string indent, bool withRange)
    {
        sb.Append(indent);
        if (withRange)
            sb.Append(node.Range).Append(' ');
        sb.Append(node.Keyword);
        if (node.Flags.Count > 0)
            sb.Append(" flags=").Append(List(node.Flags.Select(f => f.Text)));
        switch (node.Form)
        {
            case ArgumentForm.Json:
                sb.Append(" json ").Append(List(node.Arguments.Select(a => a.Text)));
                break;
            case ArgumentForm.Shell when node.Pairs.Count > 0:
                sb.Append(" pairs ").Append(List(node.Pairs.Select(p => p.Key + (p.HasEquals ? "=" : " ") + p.Value)));
                break;
            case ArgumentForm.Shell:
                sb.Append(" shell ").Append(List(node.Arguments.Select(a => a.Text)));
                break;
        }

        sb.Append('\n');
        if (node.Trigger is not null)
        {
            AppendNode(sb, node.Trigger with { Heredocs = [] }, indent + "  trigger ", false);
        }

        foreach (var h in node.Heredocs)
        {
            sb.Append(indent).Append("  heredoc ").Append(Q(h.Name))
                .Append(h.Expand ? " expand" : " literal")
                .Append(h.Chomp ? " chomp" : string.Empty)
                .Append(h.FileDescriptor != 0 ? $" fd={h.FileDescriptor}" : string.Empty)
                .Append(' ').Append(Q(h.Content)).Append('\n');
        }
    }

    /// <summary>Stages and their instructions, for people.</summary>
    public static string DumpModel(DockerfileModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var sb = new StringBuilder();
        foreach (var d in model.Directives)
            sb.Append("# ").Append(d.Name).Append('=').Append(d.Value).Append('\n');
        foreach (var arg in model.MetaArgs)
            sb.Append("meta  ").Append(Line(arg)).Append('\n');
        foreach (var stage in model.Stages)
        {
            sb.Append("stage ").Append(stage.Index);
            if (stage.Name is not null)
                sb.Append(" \"").Append(stage.Name).Append('"');
            sb.Append(" from ").Append(stage.From.BaseName).Append('\n');
            sb.Append("  ").Append(Line(stage.From)).Append('\n');
            foreach (var i in stage.Instructions)
            {
                sb.Append("  ").Append(Line(i)).Append('\n');
                foreach (var h in i.Node.Heredocs)
                {
                    sb.Append("      heredoc ").Append(Q(h.Name)).Append(h.Expand ? " expand" : " literal")
                        .Append(h.Chomp ? " chomp" : string.Empty).Append(' ').Append(Q(h.Content)).Append('\n');
                }
            }
        }

        return sb.ToString();
    }

    private static string Line(Instruction i) =>
        $"{("lines " + i.Range).PadRight(11)} {DescribeNode(i.Node).Split('\n')[0]}";

    /// <summary>The model as JSON: directives, meta args, stages with their instructions.</summary>
    public static string ToJson(DockerfileModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("file", model.FileName);
            w.WriteString("escape", model.EscapeToken.ToString());
            w.WriteStartObject("directives");
            foreach (var d in model.Directives)
                w.WriteString(d.Name, d.Value);
            w.WriteEndObject();
            w.WriteStartArray("metaArgs");
            foreach (var a in model.MetaArgs)
                WriteInstruction(w, a);
            w.WriteEndArray();
            w.WriteStartArray("stages");
            foreach (var s in model.Stages)
            {
                w.WriteStartObject();
                w.WriteNumber("index", s.Index);
                if (s.Name is null)
                    w.WriteNull("name");
                else
                    w.WriteString("name", s.Name);
                w.WriteString("base", s.From.BaseName);
                w.WritePropertyName("from");
                WriteInstruction(w, s.From);
                w.WriteStartArray("instructions");
                foreach (var i in s.Instructions)
                    WriteInstruction(w, i);
                w.WriteEndArray();
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteStartArray("warnings");
            foreach (var d in model.Warnings)
                w.WriteStringValue(d.ToString());
            w.WriteEndArray();
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void WriteInstruction(Utf8JsonWriter w, Instruction i) => WriteNode(w, i.Node);

    private static void WriteNode(Utf8JsonWriter w, InstructionNode n)
    {
        w.WriteStartObject();
        w.WriteString("keyword", n.Keyword);
        w.WriteNumber("startLine", n.Range.StartLine);
        w.WriteNumber("endLine", n.Range.EndLine);
        w.WriteString("form", n.Form.ToString().ToLowerInvariant());
        w.WriteStartArray("flags");
        foreach (var f in n.Flags)
            w.WriteStringValue(f.Text);
        w.WriteEndArray();
        if (n.Pairs.Count > 0)
        {
            w.WriteStartArray("pairs");
            foreach (var p in n.Pairs)
            {
                w.WriteStartObject();
                w.WriteString("key", p.Key);
                w.WriteString("value", p.Value);
                // How the pair was written: "k=v" (true) or the legacy one-pair form "k v" (false).
                w.WriteBoolean("hasEquals", p.HasEquals);
                w.WriteEndObject();
            }

            w.WriteEndArray();
        }
        else
        {
            w.WriteStartArray("arguments");
            foreach (var a in n.Arguments)
                w.WriteStringValue(a.Text);
            w.WriteEndArray();
        }

        if (n.Heredocs.Count > 0)
        {
            w.WriteStartArray("heredocs");
            foreach (var h in n.Heredocs)
            {
                w.WriteStartObject();
                w.WriteString("name", h.Name);
                w.WriteBoolean("expand", h.Expand);
                w.WriteBoolean("chomp", h.Chomp);
                w.WriteNumber("fileDescriptor", h.FileDescriptor);
                w.WriteString("content", h.Content);
                w.WriteEndObject();
            }

            w.WriteEndArray();
        }

        if (n.Trigger is not null)
        {
            w.WritePropertyName("trigger");
            WriteNode(w, n.Trigger with { Heredocs = [] });
        }

        w.WriteString("original", n.Original);
        w.WriteEndObject();
    }
}
