namespace LayerTool.Image;

/// <summary>
/// A layer of an image: its diff ID (sha256 of the uncompressed tar) and, when the source knows it, the
/// blob as stored (compressed digest, size, media type). Read-only; implementations reopen their data on
/// every <see cref="Open"/> rather than holding it.
/// </summary>
public interface ILayer
{
    /// <summary>sha256 of the uncompressed layer tar (the config's <c>rootfs.diff_ids</c> entry).</summary>
    Digest DiffId { get; }

    /// <summary>The stored blob (digest, size, media type, possibly compressed), or null when the source does not say.</summary>
    Descriptor? Descriptor { get; }

    /// <summary>
    /// Opens the UNCOMPRESSED layer tar as a forward-only stream. Bytes are verified against
    /// <see cref="DiffId"/> (and the stored digest and size) when the stream is read to its end: a mismatch
    /// throws <see cref="ImageFormatException"/> from the read that reaches the end, so read to the end.
    /// </summary>
    Stream Open(CancellationToken cancellationToken);
}

/// <summary>A layer whose stored blob (as <see cref="ILayer.Descriptor"/> describes it) can be copied as it is.</summary>
public interface IBlobLayer : ILayer
{
    /// <summary>Opens the stored blob (compressed as stored), verified against the descriptor at its end.</summary>
    Stream OpenBlob(CancellationToken cancellationToken);
}
