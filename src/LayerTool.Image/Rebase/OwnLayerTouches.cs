using LayerTool.Image.Layers;

namespace LayerTool.Image.Rebase;

/// <summary>What one of the image's own layers does to the paths below it: the paths it writes (with their
/// entry), the paths it whites out, the directories it makes opaque. Names only; no content is kept.</summary>
public sealed class LayerTouches
{
    private readonly Dictionary<LayerPath, LayerEntry> _writes = [];
    private readonly HashSet<LayerPath> _whiteouts = [];
    private readonly HashSet<LayerPath> _opaque = [];

    /// <summary>The paths the layer writes (a hard link counts as a write of its own path).</summary>
    public IReadOnlyDictionary<LayerPath, LayerEntry> Writes => _writes;

    /// <summary>The paths the layer's <c>.wh.NAME</c> entries delete.</summary>
    public IReadOnlySet<LayerPath> Whiteouts => _whiteouts;

    /// <summary>The directories the layer's <c>.wh..wh..opq</c> markers make opaque.</summary>
    public IReadOnlySet<LayerPath> OpaqueDirectories => _opaque;

    /// <summary>Reads a layer tar's headers (file bodies are skipped, not kept).</summary>
    public static async Task<LayerTouches> ReadAsync(Stream tar, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tar);
        var touches = new LayerTouches();
        var reader = new LayerTarReader(tar);
        await using (reader.ConfigureAwait(false))
        {
            while (await reader.ReadNextAsync(cancellationToken).ConfigureAwait(false) is { } entry)
            {
                touches.Add(entry);
            }
        }

        return touches;
    }

    /// <summary>Records one entry of the layer.</summary>
    public void Add(LayerEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var path = entry.Path;
        if (path.IsRoot || Layers.Whiteouts.UnderAufsMetadata(path)) return;
        switch (Layers.Whiteouts.Classify(path))
        {
            case WhiteoutKind.Whiteout:
                _whiteouts.Add(Layers.Whiteouts.Target(path));
                break;
            case WhiteoutKind.Opaque:
                _opaque.Add(path.Parent);
                break;
            case WhiteoutKind.None:
                _writes[path] = entry;
                break;
            default:
                break;
        }
    }
}
