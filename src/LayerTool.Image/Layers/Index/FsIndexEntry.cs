namespace LayerTool.Image.Layers.Index;

/// <summary>
/// One path of a filesystem index: its metadata, the SHA-256 of its content (regular files), and, for
/// a path that shares its inode with paths earlier in walk order, the first of them.
/// </summary>
/// <param name="Entry">Metadata; the type is never <see cref="LayerEntryType.HardLink"/> (a hard link is
/// the same file as its target, so it carries the target's type and metadata).</param>
/// <param name="ContentHash">SHA-256 of the content of a regular file; null for other types.</param>
/// <param name="HardLinkOf">The first path (walk order) of this path's hard-link group, when this is not it.</param>
public sealed record FsIndexEntry(LayerEntry Entry, byte[]? ContentHash, LayerPath? HardLinkOf)
{
    public LayerPath Path => Entry.Path;

    /// <summary>Where a regular file's content is, for an index built with a content spool (an entry ordinal of
    /// the layer stack); -1 when not recorded.</summary>
    internal long Origin { get; init; } = -1;

    /// <summary>True when the path shares its inode with other paths (any member of a hard-link group, the first included).</summary>
    public bool InHardLinkGroup { get; init; }

    /// <summary>The content hash as lowercase hex (empty when there is none).</summary>
    public string ContentHashHex => ContentHash is null ? "" : Convert.ToHexStringLower(ContentHash);
}
