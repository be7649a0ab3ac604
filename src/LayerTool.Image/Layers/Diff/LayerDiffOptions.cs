using LayerTool.Image.Layers.Index;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.Image.Layers.Diff;

/// <summary>Re-opens the content of a regular file of the final filesystem by path.</summary>
/// <remarks>
/// Needed only in one rare case: a hard link to a file that was already passed as unchanged (for
/// example <c>RUN ln /bin/a /bin/b</c> where <c>/bin/a</c> is in the base): the layer must then hold
/// <c>/bin/a</c> itself, and a one-pass stream has gone past its bytes. The content is checked
/// against the hash taken on the first pass.
/// </remarks>
public delegate Task<Stream> ContentReopener(LayerPath path, CancellationToken cancellationToken);

/// <summary>Settings of <see cref="LayerDiff"/>.</summary>
public sealed record LayerDiffOptions
{
    /// <summary>
    /// <c>SOURCE_DATE_EPOCH</c>-style clamp: every modification time later than this is written as this,
    /// and whiteouts get this time. Null keeps the times (whiteouts then get the Unix epoch).
    /// </summary>
    public DateTimeOffset? ClampTime { get; init; }

    /// <summary>
    /// Files up to this size are held in memory (one reused buffer) while their content is compared;
    /// larger ones spill to a temp file. Default 8 MiB.
    /// </summary>
    public int SpillThreshold { get; init; } = 8 << 20;

    /// <summary>Where spill files go (default: the system temp directory).</summary>
    public string? TempDirectory { get; init; }

    /// <summary>See <see cref="ContentReopener"/>. Without it, that rare hard-link case fails with a clear error.</summary>
    public ContentReopener? ReopenContent { get; init; }

    /// <summary>Reports progress: bytes of final-filesystem content read so far.</summary>
    public IProgress<long>? Progress { get; init; }

    /// <summary>
    /// Only measure: the same walk and decisions, but the layer is not written and files are read only where
    /// a comparison needs their bytes; the result's <see cref="LayerDiffResult.Size"/> is the exact size the
    /// layer will have (its diffID is zeros). For sending a layer whose size must be known before its first byte.
    /// </summary>
    public bool MeasureOnly { get; init; }

    /// <summary>
    /// Hash every file's content as it goes into the layer (the default), for the final index and the
    /// written-entry log. That hash is taken from the very buffer that is written, so comparing the two proves
    /// nothing about the diff: a caller that verifies from the written-entry log (not by reading the layer
    /// back) can turn it off, and the log and the final index then share a per-entry identity for the file
    /// (<see cref="WrittenLayerEntry.Identity"/>) instead, which saves a SHA-256 pass over every byte written.
    /// Files compared with the base are hashed either way.
    /// </summary>
    public bool HashWrittenContent { get; init; } = true;

    /// <summary>
    /// Compute the layer's diffID (the default). False leaves <see cref="LayerDiffResult.DiffId"/> zeros and saves
    /// a SHA-256 pass over the whole layer: for writing again a layer whose diffID is already known, to a reader
    /// that checks it (an engine loading the layer checks it against the config's).
    /// </summary>
    public bool HashLayer { get; init; } = true;

    /// <summary>
    /// The root directory's own entry (<c>./</c>) to write first, or null for none. An engine ignores it when it applies
    /// the layer (the root stays 0755), but <c>docker save</c> gives it back and <c>tar -x</c> of the layer applies it:
    /// a squash carries the image's own (<see cref="RootEntry"/>).
    /// </summary>
    public LayerEntry? Root { get; init; }
}

/// <summary>What <see cref="LayerDiff"/> produced.</summary>
/// <param name="DiffId"><c>sha256:&lt;hex&gt;</c> of the uncompressed layer tar.</param>
/// <param name="Size">Bytes of the layer tar.</param>
/// <param name="Entries">Tar entries written (whiteouts included).</param>
/// <param name="Whiteouts">Whiteouts written.</param>
/// <param name="FinalIndex">The final filesystem's index (on disk), for <see cref="LayerVerifier"/>.</param>
public sealed record LayerDiffResult(string DiffId, long Size, long Entries, long Whiteouts, FsIndex FinalIndex) : IDisposable
{
    /// <summary>Releases the final index's file and the written-entry log.</summary>
    public void Dispose()
    {
        WrittenLog?.Dispose();
        FinalIndex.Dispose();
    }

    private IReadOnlyList<WrittenLayerEntry>? _entries;

    /// <summary>Every entry written into the layer, with the hash of the content bytes written (recorded by
    /// the tar writer into a log on disk), for the verifier.</summary>
    internal WrittenEntryLog? WrittenLog { get; init; }

    /// <summary>The entries of <see cref="WrittenLog"/> as a list (read from disk on first use; null when not recorded).</summary>
    public IReadOnlyList<WrittenLayerEntry>? WrittenEntries => _entries ??= WrittenLog?.Read().ToList();
}
