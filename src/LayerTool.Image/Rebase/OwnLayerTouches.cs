using System.Text;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Tar;

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

    /// <summary>
    /// Writes what <see cref="ReadFrom"/> reads back: the written paths with the metadata the conflict check uses (type,
    /// mode, owner, xattrs), the whiteout targets and the opaque directories. Paths are kept as bytes (non-UTF-8 names
    /// survive).
    /// </summary>
    public void WriteTo(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        writer.Write(Magic);
        writer.Write(_writes.Count);
        foreach (var (path, entry) in _writes)
        {
            WritePath(writer, path);
            writer.Write((byte)entry.Type);
            writer.Write(entry.Mode);
            writer.Write(entry.Uid);
            writer.Write(entry.Gid);
            writer.Write(entry.Xattrs.Count);
            foreach (var (name, value) in entry.Xattrs)
            {
                writer.Write(name);
                writer.Write(value.Length);
                writer.Write(value);
            }
        }

        writer.Write(_whiteouts.Count);
        foreach (var path in _whiteouts) WritePath(writer, path);
        writer.Write(_opaque.Count);
        foreach (var path in _opaque) WritePath(writer, path);
        writer.Write(Magic);
    }

    /// <summary>Reads what <see cref="WriteTo"/> wrote; throws <see cref="InvalidDataException"/> on anything else.</summary>
    public static LayerTouches ReadFrom(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var reader = new BinaryReader(stream, Encoding.UTF8, leaveOpen: true);
        if (reader.ReadInt32() != Magic) throw new InvalidDataException("not a layer file list");
        var touches = new LayerTouches();
        var writes = Count(reader);
        for (var i = 0; i < writes; i++)
        {
            var path = ReadPath(reader);
            var type = (LayerEntryType)reader.ReadByte();
            if (!Enum.IsDefined(type)) throw new InvalidDataException("unknown entry type");
            var mode = reader.ReadInt32();
            var uid = reader.ReadInt64();
            var gid = reader.ReadInt64();
            var xattrCount = Count(reader);
            var xattrs = new List<KeyValuePair<string, byte[]>>(xattrCount);
            for (var x = 0; x < xattrCount; x++)
            {
                var name = reader.ReadString();
                xattrs.Add(new(name, reader.ReadBytes(Count(reader))));
            }

            touches._writes[path] = new LayerEntry { Path = path, Type = type, Mode = mode, Uid = uid, Gid = gid, Xattrs = LayerEntry.CreateXattrs(xattrs) };
        }

        var whiteouts = Count(reader);
        for (var i = 0; i < whiteouts; i++) touches._whiteouts.Add(ReadPath(reader));
        var opaque = Count(reader);
        for (var i = 0; i < opaque; i++) touches._opaque.Add(ReadPath(reader));
        if (reader.ReadInt32() != Magic) throw new InvalidDataException("a layer file list without its end marker");
        return touches;
    }

    private const int Magic = 0x3154544c; // "LTT1"

    private static int Count(BinaryReader reader)
    {
        var n = reader.ReadInt32();
        return n is >= 0 and <= 1 << 26 ? n : throw new InvalidDataException("a count out of range");
    }

    private static void WritePath(BinaryWriter writer, LayerPath path)
    {
        writer.Write(path.Bytes.Length);
        writer.Write(path.Bytes);
    }

    private static LayerPath ReadPath(BinaryReader reader)
    {
        var length = Count(reader);
        if (length > LayerPath.MaxBytes) throw new InvalidDataException("a path longer than a layer path may be");
        var bytes = reader.ReadBytes(length);
        return bytes.Length == length ? LayerPath.FromBytes(bytes) : throw new EndOfStreamException();
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
