namespace LayerTool.Image.Layers;

/// <summary>
/// The OCI/AUFS whiteout convention. <c>.wh.NAME</c> hides NAME of lower layers; <c>.wh..wh..opq</c>
/// in a directory hides everything lower layers have below it. Only the base name is matched:
/// <c>foo.wh.bar</c> and a directory <c>x.wh.y</c> are ordinary names.
/// </summary>
public static class Whiteouts
{
    /// <summary>The whiteout prefix, <c>.wh.</c>.</summary>
    public const string Prefix = ".wh.";

    /// <summary>The opaque-directory marker's name, <c>.wh..wh..opq</c>.</summary>
    public const string OpaqueName = ".wh..wh..opq";

    /// <summary>Names starting with this are AUFS bookkeeping (<c>.wh..wh.plnk</c>, ...), skipped by docker.</summary>
    public const string MetaPrefix = ".wh..wh.";

    private static ReadOnlySpan<byte> PrefixBytes => ".wh."u8;

    private static ReadOnlySpan<byte> OpaqueBytes => ".wh..wh..opq"u8;

    private static ReadOnlySpan<byte> MetaPrefixBytes => ".wh..wh."u8;

    /// <summary>What an entry means as a whiteout.</summary>
    public static WhiteoutKind Classify(LayerPath path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var name = path.Name;
        if (!name.StartsWith(PrefixBytes)) return WhiteoutKind.None;
        if (name.SequenceEqual(OpaqueBytes)) return WhiteoutKind.Opaque;
        if (name.StartsWith(MetaPrefixBytes)) return WhiteoutKind.AufsMetadata;
        return name.Length > PrefixBytes.Length ? WhiteoutKind.Whiteout : WhiteoutKind.None;
    }

    /// <summary>The path a whiteout entry hides (<c>a/.wh.b</c> → <c>a/b</c>).</summary>
    public static LayerPath Target(LayerPath whiteout)
    {
        ArgumentNullException.ThrowIfNull(whiteout);
        if (Classify(whiteout) != WhiteoutKind.Whiteout)
            throw new ArgumentException($"'{whiteout}' is not a whiteout", nameof(whiteout));
        return whiteout.Parent.Append(whiteout.Name[PrefixBytes.Length..]);
    }

    /// <summary>The whiteout entry's path that hides <paramref name="path"/>.</summary>
    public static LayerPath For(LayerPath path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.IsRoot) throw new ArgumentException("the root cannot be whited out", nameof(path));
        var name = path.Name;
        var wh = new byte[PrefixBytes.Length + name.Length];
        PrefixBytes.CopyTo(wh);
        name.CopyTo(wh.AsSpan(PrefixBytes.Length));
        return path.Parent.Append(wh);
    }

    /// <summary>The opaque marker's path for directory <paramref name="dir"/>.</summary>
    public static LayerPath OpaqueMarker(LayerPath dir)
    {
        ArgumentNullException.ThrowIfNull(dir);
        return dir.Append(OpaqueBytes);
    }

    /// <summary>True when some component of <paramref name="path"/> (not the last) is AUFS metadata.</summary>
    internal static bool UnderAufsMetadata(LayerPath path)
    {
        foreach (var a in path.Ancestors())
        {
            if (a.Name.StartsWith(MetaPrefixBytes)) return true;
        }
        return false;
    }
}

/// <summary>How an entry's name reads under the whiteout convention.</summary>
public enum WhiteoutKind
{
    /// <summary>An ordinary entry.</summary>
    None,

    /// <summary><c>.wh.NAME</c>: hides NAME.</summary>
    Whiteout,

    /// <summary><c>.wh..wh..opq</c>: the directory is opaque.</summary>
    Opaque,

    /// <summary>Other <c>.wh..wh.*</c> names: AUFS bookkeeping, ignored.</summary>
    AufsMetadata,
}
