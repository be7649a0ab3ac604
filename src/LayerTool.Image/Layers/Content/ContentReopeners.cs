using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.Image.Layers.Content;

/// <summary>Ready-made <see cref="ContentReopener"/>s.</summary>
public static class ContentReopeners
{
    /// <summary>
    /// Re-reads files from a flattened tar that can be opened again (a temp copy of an export, a
    /// flattened archive). When the opened stream can seek (a file), the first call indexes where every
    /// file's content lies and later calls seek straight to it; otherwise each call scans for the path.
    /// The returned stream is independent of the tar (a bounded view of a fresh handle, or a temp copy).
    /// </summary>
    public static ContentReopener FromTar(Func<CancellationToken, Task<Stream>> openTar, string? tempDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(openTar);
        Dictionary<LayerPath, (long Offset, long Size)>? offsets = null;
        Dictionary<LayerPath, LayerPath>? links = null;
        return async (path, ct) =>
        {
            if (offsets is null)
            {
                var first = await openTar(ct).ConfigureAwait(false);
                if (first.CanSeek)
                {
                    var map = new Dictionary<LayerPath, (long, long)>();
                    var linkMap = new Dictionary<LayerPath, LayerPath>();
                    var reader = new LayerTarReader(first);
                    await using (reader.ConfigureAwait(false))
                    {
                        while (await reader.ReadNextAsync(ct).ConfigureAwait(false) is { } entry)
                        {
                            if (entry.Type == LayerEntryType.RegularFile) map[entry.Path] = (reader.ContentOffset, entry.Size);
                            else if (entry.Type == LayerEntryType.HardLink) linkMap[entry.Path] = entry.HardLinkTarget;
                        }
                    }
                    (offsets, links) = (map, linkMap);
                }
                else
                {
                    await first.DisposeAsync().ConfigureAwait(false);
                    return await ScanAsync(openTar, path, tempDirectory, ct).ConfigureAwait(false);
                }
            }

            var wanted = links!.TryGetValue(path, out var target) ? target : path;
            if (!offsets.TryGetValue(wanted, out var where)) throw new ImageFormatException($"'{path}' is not in the filesystem any more");
            var stream = await openTar(ct).ConfigureAwait(false);
            stream.Position += where.Offset; // offsets count from where the tar starts
            return new SubStream(stream, where.Size);
        };
    }

    private static async Task<Stream> ScanAsync(Func<CancellationToken, Task<Stream>> openTar, LayerPath path, string? tempDirectory, CancellationToken ct)
    {
        var wanted = path;
        for (var hops = 0; hops < 2; hops++)
        {
            var reader = new LayerTarReader(await openTar(ct).ConfigureAwait(false));
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadNextAsync(ct).ConfigureAwait(false) is { } entry)
                {
                    if (entry.Path != wanted) continue;
                    if (entry.Type == LayerEntryType.HardLink)
                    {
                        wanted = entry.HardLinkTarget;
                        break;
                    }
                    var copy = new FileStream(LayerDiff.TempFile(tempDirectory), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 81920,
                        FileOptions.DeleteOnClose | FileOptions.Asynchronous);
                    await reader.Content.CopyToAsync(copy, ct).ConfigureAwait(false);
                    copy.Position = 0;
                    return copy;
                }
            }
        }
        throw new ImageFormatException($"'{path}' is not in the filesystem any more");
    }

    /// <summary>Reads a window of a stream it owns.</summary>
    private sealed class SubStream(Stream inner, long size) : ReadOnlyStream
    {
        private readonly long _size = size;
        private long _left = size;

        public override long Length => _size;

        public override long Position { get => _size - _left; set => throw new NotSupportedException(); }

        public override int Read(Span<byte> buffer)
        {
            var n = inner.Read(buffer[..(int)Math.Min(buffer.Length, _left)]);
            _left -= n;
            return n;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = await inner.ReadAsync(buffer[..(int)Math.Min(buffer.Length, _left)], cancellationToken).ConfigureAwait(false);
            _left -= n;
            return n;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }

        public override async ValueTask DisposeAsync()
        {
            await inner.DisposeAsync().ConfigureAwait(false);
            await base.DisposeAsync().ConfigureAwait(false);
        }
    }
}
