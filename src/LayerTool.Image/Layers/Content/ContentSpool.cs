using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Layers.Index;
using Microsoft.Win32.SafeHandles;

namespace LayerTool.Image.Layers.Content;

/// <summary>
/// The content of a layer stack's regular files, copied once into an unlinked temp file as the layers are
/// read (hashed on the way), addressed by the entry's ordinal in the stack (its index in its layer plus the
/// entries of the layers below). An offsets file keeps eight bytes per ordinal at <c>8 × ordinal</c>, so a
/// lookup is one positional read and nothing about the files stays in memory. What an on-disk index merged
/// with <see cref="FsIndex.MergeLayersOnDiskAsync"/> needs to hand the final filesystem to
/// <see cref="LayerDiff"/> as a stream, without flattening it into a tar first.
/// </summary>
internal sealed class ContentSpool : IDisposable
{
    private readonly SafeFileHandle _data;
    private readonly SafeFileHandle _offsets;
    private long _end;

    public ContentSpool(string? tempDirectory)
    {
        _data = FsIndexStore.CreateUnlinked(tempDirectory);
        try
        {
            _offsets = FsIndexStore.CreateUnlinked(tempDirectory);
        }
        catch
        {
            _data.Dispose();
            throw;
        }
    }

    /// <summary>Copies <paramref name="content"/> (exactly <paramref name="size"/> bytes) as the content of stack entry <paramref name="ordinal"/>.</summary>
    /// <returns>The content's SHA-256.</returns>
    public async Task<byte[]> AddAsync(long ordinal, Stream content, long size, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(content);
        var start = _end;
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 17);
        try
        {
            int n;
            while ((n = await content.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
            {
                sha.AppendData(buffer, 0, n);
                await RandomAccess.WriteAsync(_data, buffer.AsMemory(0, n), _end, cancellationToken).ConfigureAwait(false);
                _end += n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        if (_end - start != size) throw new ImageFormatException($"a file's content is {_end - start} bytes where its header says {size}");
        var at = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(at, start);
        await RandomAccess.WriteAsync(_offsets, at, ordinal * 8, cancellationToken).ConfigureAwait(false);
        return sha.GetHashAndReset();
    }

    /// <summary>The content of stack entry <paramref name="ordinal"/> (<paramref name="size"/> bytes).</summary>
    public Stream Open(long ordinal, long size)
    {
        if (ordinal < 0) throw new InvalidOperationException("the file's content was not spooled");
        if (size == 0) return Stream.Null;
        Span<byte> at = stackalloc byte[8];
        if (RandomAccess.Read(_offsets, at, ordinal * 8) != 8) throw new InvalidOperationException($"no spooled content for entry {ordinal}");
        var start = BinaryPrimitives.ReadInt64LittleEndian(at);
        return new FsIndexStore.HandleStream(_data, start, start + size);
    }

    public void Dispose()
    {
        _data.Dispose();
        _offsets.Dispose();
    }
}

/// <summary>
/// The final filesystem of a layer stack as <see cref="LayerDiff"/> reads it from an export: the records of
/// its on-disk index in walk order (the first path of a hard-link group carries the file, the others are
/// links to it), each file's content from the <see cref="ContentSpool"/>, and its hash known beforehand
/// (<see cref="IContentHashHint"/>), so a file equal to the base's is never read again.
/// </summary>
internal sealed class SpooledFilesystem(FsIndexStore index, ContentSpool spool) : ILayerEntrySource, IContentHashHint, IDisposable
{
    private readonly IEnumerator<StoredRecord> _records = index.Records().GetEnumerator();
    private Stream? _content;

    public Stream Content => _content ?? Stream.Null;

    public byte[]? CurrentContentHash { get; private set; }

    public ValueTask<LayerEntry?> ReadNextAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        _content?.Dispose();
        _content = null;
        CurrentContentHash = null;
        if (!_records.MoveNext()) return ValueTask.FromResult<LayerEntry?>(null);
        var r = _records.Current;
        if (r.FirstLink is not null)
            return ValueTask.FromResult<LayerEntry?>(r.Entry.AsHardLinkTo(r.FirstLink));
        if (r.Entry.Type == LayerEntryType.RegularFile)
        {
            CurrentContentHash = r.Hash;
            _content = spool.Open(r.Origin, r.Entry.Size);
        }
        return ValueTask.FromResult<LayerEntry?>(r.Entry);
    }

    /// <summary>Re-reads a file of this filesystem (LayerDiff's rare hard-link case).</summary>
    public Task<Stream> ReopenAsync(LayerPath path, CancellationToken cancellationToken)
    {
        var r = index.Find(path) ?? throw new ImageFormatException($"'{path}' is not in the image's filesystem");
        return Task.FromResult(spool.Open(r.Origin, r.Entry.Size));
    }

    public void Dispose()
    {
        _content?.Dispose();
        _records.Dispose();
    }
}
