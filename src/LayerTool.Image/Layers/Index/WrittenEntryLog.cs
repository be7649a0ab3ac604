using LayerTool.Image.Layers.Tar;

namespace LayerTool.Image.Layers.Index;

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

/// <summary>
/// The entries a <see cref="LayerTarWriter"/> wrote, logged to an unlinked temp file (see
/// <see cref="FsIndexStore.CreateUnlinked"/>) rather than kept in memory, and read back as often as the
/// verifier needs.
/// </summary>
internal sealed class WrittenEntryLog : IDisposable
{
    private readonly Microsoft.Win32.SafeHandles.SafeFileHandle _handle;
    private readonly HandleWriter _sink;
    private readonly BinaryWriter _w;
    private readonly PathEncoder _paths = new();

    public WrittenEntryLog(string? tempDirectory)
    {
        _handle = FsIndexStore.CreateUnlinked(tempDirectory);
        _sink = new HandleWriter(_handle, checksum: false);
        _w = new BinaryWriter(_sink, System.Text.Encoding.UTF8, leaveOpen: true);
    }

    public long Count { get; private set; }

    public void Append(WrittenLayerEntry written)
    {
        ArgumentNullException.ThrowIfNull(written);
        _w.Write((byte)1);
        FsIndexStore.WriteEntry(_w, _paths, null, written.Entry);
        _w.Write(written.ContentHash is not null);
        if (written.ContentHash is not null) _w.Write(written.ContentHash);
        Count++;
    }

    /// <summary>
    /// Logs every entry of a layer tar with its content hash. <paramref name="readContent"/> (given the entry's
    /// index in the tar) reads a regular file's content and returns its SHA-256, e.g. while spooling it;
    /// by default the content is only hashed.
    /// </summary>
    public async Task AppendTarAsync(Stream tar, Func<long, LayerEntry, Stream, CancellationToken, Task<byte[]>>? readContent,
        CancellationToken cancellationToken, bool leaveOpen = false)
    {
        var reader = new LayerTarReader(tar, leaveOpen);
        await using (reader.ConfigureAwait(false))
        {
            long index = 0;
            while (await reader.ReadNextAsync(cancellationToken).ConfigureAwait(false) is { } entry)
            {
                byte[]? hash = null;
                if (entry.Type == LayerEntryType.RegularFile)
                {
                    hash = readContent is null
                        ? await FsIndex.HashAsync(reader.Content, cancellationToken).ConfigureAwait(false)
                        : await readContent(index, entry, reader.Content, cancellationToken).ConfigureAwait(false);
                }
                Append(new WrittenLayerEntry(entry, hash));
                index++;
            }
        }
    }

    /// <summary>The entries logged so far, in the order they were written.</summary>
    public IEnumerable<WrittenLayerEntry> Read()
    {
        _w.Flush();
        using var r = new BinaryReader(new BufferedStream(new FsIndexStore.HandleStream(_handle, 0, _sink.Position), 1 << 16), System.Text.Encoding.UTF8);
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        var paths = new PathDecoder();
        while (r.BaseStream.ReadByte() == 1)
        {
            var entry = FsIndexStore.ReadEntry(r, names, paths);
            var hash = r.ReadBoolean() ? r.ReadBytes(32) : null;
            yield return new WrittenLayerEntry(entry, hash);
        }
    }

    public void Dispose()
    {
        _w.Dispose();
        _sink.Dispose();
        _handle.Dispose();
    }
}
