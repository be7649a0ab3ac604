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
            if (mode == ProgressMode.Json) writer.WriteLine(JsonSerializer.Serialize(new { stream = text }));
            else writer.Write(text);
            writer.Flush();
        }
    }

    public void Line(string text) => Write(text + "\n");

    /// <summary>A machine-readable record (JSON mode only), like the API's <c>aux</c> messages.</summary>
    public void Aux(object value)
    {
        if (quiet || mode != ProgressMode.Json) return;
        lock (_gate)
        {
            writer.WriteLine(JsonSerializer.Serialize(new { aux = value }));
            writer.Flush();
        }
    }

    /// <summary>The 12-character form docker prints.</summary>
    public static string ShortId(string imageId)
    {
        var hex = imageId.StartsWith("sha256:", StringComparison.Ordinal) ? imageId[7..] : imageId;
        return hex.Length > 12 ? hex[..12] : hex;
    }
}
