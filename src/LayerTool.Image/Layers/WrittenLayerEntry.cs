namespace LayerTool.Image.Layers;

/// <summary>One entry as <see cref="LayerTarWriter"/> wrote it: the header's values and, for a regular file,
/// the SHA-256 of the content bytes written into the tar.</summary>
public sealed record WrittenLayerEntry(LayerEntry Entry, byte[]? ContentHash);

/// <summary>Replays recorded entries as a layer (content known only by hash, see <see cref="IContentHashHint"/>).</summary>
internal sealed class WrittenEntrySource(IReadOnlyList<WrittenLayerEntry> entries) : ILayerEntrySource, IContentHashHint
{
    private int _next;
    private byte[]? _hash;

    public Stream Content => Stream.Null;

    public byte[]? CurrentContentHash => _hash;

    public ValueTask<LayerEntry?> ReadNextAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (_next >= entries.Count)
        {
            _hash = null;
            return ValueTask.FromResult<LayerEntry?>(null);
        }
        var w = entries[_next++];
        if (w.Entry.Type == LayerEntryType.RegularFile && w.ContentHash is null)
            throw new ImageFormatException($"the recorded entry '{w.Entry.Name}' has no content hash");
        _hash = w.ContentHash;
        return ValueTask.FromResult<LayerEntry?>(w.Entry);
    }
}
