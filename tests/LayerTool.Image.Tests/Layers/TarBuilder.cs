using System.Text;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.Image.Tests.Layers;

/// <summary>Builds small layer tars in memory for tests.</summary>
internal sealed class TarBuilder
{
    private readonly List<(LayerEntry Entry, byte[]? Content)> _entries = [];

    public static DateTimeOffset Time { get; } = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000);

    public TarBuilder Add(LayerEntry entry, byte[]? content = null)
    {
        _entries.Add((entry, content));
        return this;
    }

    public TarBuilder Dir(string path, int mode = 0x1ED, long uid = 0, long gid = 0) =>
        Add(new LayerEntry { Path = LayerPath.Parse(path), Type = LayerEntryType.Directory, Mode = mode, Uid = uid, Gid = gid, ModificationTime = Time });

    public TarBuilder File(string path, string content, int mode = 0x1A4, long uid = 0, long gid = 0, DateTimeOffset? mtime = null) =>
        File(LayerPath.Parse(path), Encoding.UTF8.GetBytes(content), mode, uid, gid, mtime);

    public TarBuilder File(LayerPath path, byte[] content, int mode = 0x1A4, long uid = 0, long gid = 0, DateTimeOffset? mtime = null,
        IReadOnlyDictionary<string, byte[]>? xattrs = null) =>
        Add(new LayerEntry
        {
            Path = path,
            Type = LayerEntryType.RegularFile,
            Mode = mode,
            Uid = uid,
            Gid = gid,
            Size = content.Length,
            ModificationTime = mtime ?? Time,
            Xattrs = xattrs ?? LayerEntry.CreateXattrs([]),
        }, content);

    public TarBuilder Symlink(string path, string target) =>
        Add(new LayerEntry { Path = LayerPath.Parse(path), Type = LayerEntryType.Symlink, Mode = 0x1FF, LinkTarget = Encoding.UTF8.GetBytes(target), ModificationTime = Time });

    public TarBuilder HardLink(string path, string target, int mode = 0x1A4) =>
        Add(new LayerEntry { Path = LayerPath.Parse(path), Type = LayerEntryType.HardLink, Mode = mode, LinkTarget = Encoding.UTF8.GetBytes(target), ModificationTime = Time });

    public TarBuilder Device(string path, LayerEntryType type, long major, long minor) =>
        Add(new LayerEntry { Path = LayerPath.Parse(path), Type = type, Mode = 0x1B6, DevMajor = major, DevMinor = minor, ModificationTime = Time });

    public TarBuilder Fifo(string path) =>
        Add(new LayerEntry { Path = LayerPath.Parse(path), Type = LayerEntryType.Fifo, Mode = 0x1A4, ModificationTime = Time });

    public TarBuilder Whiteout(string path) =>
        Add(new LayerEntry { Path = Whiteouts.For(LayerPath.Parse(path)), Type = LayerEntryType.RegularFile, ModificationTime = Time });

    public TarBuilder Opaque(string dir) =>
        Add(new LayerEntry { Path = Whiteouts.OpaqueMarker(LayerPath.Parse(dir)), Type = LayerEntryType.RegularFile, ModificationTime = Time });

    public byte[] Build()
    {
        using var ms = new MemoryStream();
        using (var w = new LayerTarWriter(ms, leaveOpen: true))
        {
            foreach (var (entry, content) in _entries)
            {
                using var c = content is null ? null : new MemoryStream(content);
                w.WriteEntryAsync(entry, c, CancellationToken.None).AsTask().GetAwaiter().GetResult();
            }
            w.FinishAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
        }
        return ms.ToArray();
    }

    /// <summary>Reads every entry of a tar with its content.</summary>
    public static async Task<List<(LayerEntry Entry, byte[] Content)>> ReadAllAsync(byte[] tar)
    {
        var list = new List<(LayerEntry, byte[])>();
        await using var reader = new LayerTarReader(new MemoryStream(tar));
        while (await reader.ReadNextAsync(CancellationToken.None) is { } e)
        {
            using var ms = new MemoryStream();
            await reader.Content.CopyToAsync(ms);
            list.Add((e, ms.ToArray()));
        }
        return list;
    }

    public static string DataPath(string name) => System.IO.Path.Combine(AppContext.BaseDirectory, "Layers", "Data", name);
}
