using LayerTool.Image.Layers.Diff;

namespace LayerTool.Image.Layers.Tar;

/// <summary>One entry as <see cref="LayerTarWriter"/> wrote it: the header's values and, for a regular file,
/// the SHA-256 of the content bytes written into the tar.</summary>
public sealed record WrittenLayerEntry(LayerEntry Entry, byte[]? ContentHash)
{
    private static ReadOnlySpan<byte> IdentityTag => "layertool:written-entry\0"u8;

    /// <summary>
    /// What stands for a file's content hash when the writer does not hash what it writes
    /// (<see cref="LayerDiffOptions.HashWrittenContent"/>): the entry's ordinal in its layer behind a fixed
    /// 24-byte tag, so two written files never share it, and it matches no SHA-256 a base could hold.
    /// </summary>
    public static byte[] Identity(long ordinal)
    {
        var id = new byte[32];
        IdentityTag.CopyTo(id);
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(id.AsSpan(24), ordinal);
        return id;
    }
}
