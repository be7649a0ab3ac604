using System.Text.Json;

namespace LayerTool.Build;

/// <summary>
/// Writes build progress the way docker does (<c>Step N/M : ...</c>, <c> ---> id</c>) or, in JSON mode,
/// as the Engine API's build stream (<c>{"stream": "..."}</c> per line). Quiet mode writes nothing here.
/// </summary>
public sealed class BuildLog(TextWriter writer, ProgressMode mode, bool quiet)
{
    private readonly Lock _gate = new();

    public bool Quiet => quiet;

    /// <summary>Writes text as it is (RUN output keeps its own line breaks).</summary>
    public void Write(string text)
    {
        if (quiet || text.Length == 0) return;
        lock (_gate)
        {
            if (mode == ProgressMode.Json) writer.WriteLine(JsonObjectLine("stream", text));
            else writer.Write(text);
            writer.Flush();
        }
    }

    public void Line(string text) => Write(text + "\n");

    /// <summary>The built image's ID as a machine-readable record (JSON mode only), like the API's <c>{"aux":{"ID":...}}</c>.</summary>
    public void AuxId(string imageId)
    {
        if (quiet || mode != ProgressMode.Json) return;
        lock (_gate)
        {
            writer.WriteLine("{\"aux\":" + JsonObjectLine("ID", imageId) + "}");
            writer.Flush();
        }
    }

    /// <summary><c>{"name":"value"}</c> with the value escaped as JSON requires.</summary>
    private static string JsonObjectLine(string name, string value)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString(name, value);
            json.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>The 12-character form docker prints.</summary>
    public static string ShortId(string imageId)
    {
        var hex = imageId.StartsWith("sha256:", StringComparison.Ordinal) ? imageId[7..] : imageId;
        return hex.Length > 12 ? hex[..12] : hex;
    }
}
