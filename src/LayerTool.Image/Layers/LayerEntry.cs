using System.Collections.Frozen;

namespace LayerTool.Image.Layers;

/// <summary>
/// The metadata of one tar entry of a layer (or of a flattened filesystem). Paths and link targets are
/// kept as exact bytes. Compare entries with <see cref="SameMetadata"/>; the record's generated equality
/// compares arrays by reference.
/// </summary>
public sealed record LayerEntry
{
    private static readonly IReadOnlyDictionary<string, byte[]> NoXattrs =
        FrozenDictionary<string, byte[]>.Empty;

    /// <summary>The cleaned path (<see cref="LayerPath.Root"/> for a <c>./</c> entry).</summary>
    public required LayerPath Path { get; init; }

    public required LayerEntryType Type { get; init; }

    /// <summary>Permission bits including setuid (04000), setgid (02000) and sticky (01000); no file-type bits.</summary>
    public int Mode { get; init; }

    public long Uid { get; init; }

    public long Gid { get; init; }

    /// <summary>Owner name; informative only (numeric ids win).</summary>
    public string UserName { get; init; } = "";

    public string GroupName { get; init; } = "";

    /// <summary>Content length of a regular file; 0 for every other type.</summary>
    public long Size { get; init; }

    public DateTimeOffset ModificationTime { get; init; } = DateTimeOffset.UnixEpoch;

    /// <summary>
    /// A symlink's target as raw bytes (may be absolute or contain <c>..</c>: legal in images), or for a
    /// hard link the cleaned path of the entry it links to. Empty for other types.
    /// </summary>
    public byte[] LinkTarget { get; init; } = [];

    public long DevMajor { get; init; }

    public long DevMinor { get; init; }

    /// <summary>Extended attributes, name → raw value (e.g. <c>security.capability</c>).</summary>
    public IReadOnlyDictionary<string, byte[]> Xattrs { get; init; } = NoXattrs;

    /// <summary>The path as display text (see <see cref="LayerPath.ToString"/>).</summary>
    public string Name => Path.ToString();

    /// <summary>A hard link's target as a path.</summary>
    public LayerPath HardLinkTarget =>
        Type == LayerEntryType.HardLink ? LayerPath.FromBytes(LinkTarget) : throw new InvalidOperationException($"{Name} is not a hard link");

    /// <summary>The link target as display text.</summary>
    public string LinkTargetText => LayerPath.Display(LinkTarget);

    public bool IsDirectory => Type == LayerEntryType.Directory;

    /// <summary>This entry as a hard link to <paramref name="target"/> (the same file under another path: no size, no device numbers).</summary>
    public LayerEntry AsHardLinkTo(LayerPath target)
    {
        ArgumentNullException.ThrowIfNull(target);
        return this with { Type = LayerEntryType.HardLink, LinkTarget = target.Bytes.ToArray(), Size = 0, DevMajor = 0, DevMinor = 0 };
    }

    /// <summary>
    /// True when both entries describe the same file for a filesystem comparison: type, mode, uid, gid,
    /// size, link target, device numbers and xattrs. Modification times and owner names are not compared.
    /// </summary>
    public bool SameMetadata(LayerEntry other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return Type == other.Type
            && Mode == other.Mode
            && Uid == other.Uid
            && Gid == other.Gid
            && Size == other.Size
            && LinkTarget.AsSpan().SequenceEqual(other.LinkTarget)
            && DevMajor == other.DevMajor
            && DevMinor == other.DevMinor
            && SameXattrs(Xattrs, other.Xattrs);
    }

    /// <summary>Compares two xattr sets by name and value bytes.</summary>
    public static bool SameXattrs(IReadOnlyDictionary<string, byte[]> a, IReadOnlyDictionary<string, byte[]> b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Count != b.Count) return false;
        foreach (var (k, v) in a)
        {
            if (!b.TryGetValue(k, out var w) || !v.AsSpan().SequenceEqual(w)) return false;
        }
        return true;
    }

    /// <summary>Builds an xattr dictionary (ordinal keys).</summary>
    public static IReadOnlyDictionary<string, byte[]> CreateXattrs(IEnumerable<KeyValuePair<string, byte[]>> pairs)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        if (pairs is ICollection<KeyValuePair<string, byte[]>> { Count: 0 }) return NoXattrs;
        var frozen = pairs.ToFrozenDictionary(StringComparer.Ordinal);
        return frozen.Count == 0 ? NoXattrs : frozen;
    }
}
