using Microsoft.Win32.SafeHandles;

namespace LayerTool.Image.Formats;

/// <summary>
/// A read-only, seekable stream that is the concatenation of byte blocks and ranges of files, opened on
/// first read: an archive whose big members are files already on disk, read in place rather than copied
/// into a second file. Its length is known up front, so an HTTP body made of it goes out with a
/// <c>Content-Length</c> (not chunked).
/// </summary>
internal sealed class ArchiveStream : Stream
{
    /// <summary>
    /// Bytes per read when copied to another stream (the HTTP body): large reads make few, large socket
    /// writes. Measured on the load of a 122 MB layer: 4 KiB reads made the load take about twice as long
    /// (1.0-2.3 s against 0.5-0.6 s), whether the body was chunked or had a Content-Length; 1 MiB chunks cost
    /// nothing over a Content-Length body. That is why the reverted pipe (3c1a10b) was slower: a PipeReader
    /// stream hands out its 4 KiB segments, so the body went out in 4 KiB chunks.
    /// </summary>
    private const int CopyBufferSize = 1 << 20;

    private readonly Segment[] _segments;
    private readonly long[] _starts;
    private long _position;

    public ArchiveStream(IReadOnlyList<Segment> segments)
    {
        ArgumentNullException.ThrowIfNull(segments);
        _segments = [.. segments];
        _starts = new long[_segments.Length];
        long at = 0;
        for (var i = 0; i < _segments.Length; i++)
        {
            _starts[i] = at;
            at += _segments[i].Length;
        }
        Length = at;
    }

    /// <summary>A part of the stream: either <see cref="Bytes"/>, or <see cref="Length"/> bytes of the file <see cref="FilePath"/> from its start.</summary>
    internal sealed class Segment
    {
        private SafeFileHandle? _handle;

        private Segment(byte[]? bytes, string? file, long length)
        {
            Bytes = bytes;
            FilePath = file;
            Length = length;
        }

        public byte[]? Bytes { get; }

        public string? FilePath { get; }

        public long Length { get; }

        public static Segment Of(byte[] bytes) => new(bytes, null, bytes.Length);

        public static Segment OfFile(string path, long length) => new(null, path, length);

        public int Read(long offset, Span<byte> buffer)
        {
            var n = (int)Math.Min(buffer.Length, Length - offset);
            if (n <= 0) return 0;
            if (Bytes is not null)
            {
                Bytes.AsSpan((int)offset, n).CopyTo(buffer);
                return n;
            }
            if (_handle is null)
            {
                _handle = File.OpenHandle(FilePath!, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
                if (RandomAccess.GetLength(_handle) != Length)
                    throw new IOException($"'{FilePath}' is no longer {Length} bytes long");
            }
            var read = RandomAccess.Read(_handle, buffer[..n], offset);
            return read > 0 ? read : throw new IOException($"'{FilePath}' ended before {Length} bytes");
        }

        public void Close()
        {
            _handle?.Dispose();
            _handle = null;
        }
    }

    public override bool CanRead => true;

    public override bool CanSeek => true;

    public override bool CanWrite => false;

    public override long Length { get; }

    public override long Position
    {
        get => _position;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            _position = value;
        }
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var total = 0;
        while (buffer.Length > 0 && _position < Length)
        {
            var i = Array.BinarySearch(_starts, _position);
            if (i < 0) i = ~i - 1;
            var segment = _segments[i];
            var n = segment.Read(_position - _starts[i], buffer);
            if (n == 0)
            {
                // An empty segment: skip it.
                _position = _starts[i] + segment.Length;
                continue;
            }
            _position += n;
            total += n;
            buffer = buffer[n..];
        }
        return total;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult(Read(buffer.Span));
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async Task CopyToAsync(Stream destination, int bufferSize, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(Math.Max(bufferSize, CopyBufferSize));
        try
        {
            int n;
            while ((n = Read(buffer.AsSpan(0, CopyBufferSize))) > 0)
                await destination.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public override long Seek(long offset, SeekOrigin origin)
    {
        Position = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            SeekOrigin.End => Length + offset,
            _ => throw new ArgumentOutOfRangeException(nameof(origin)),
        };
        return _position;
    }

    public override void Flush() { }

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            foreach (var s in _segments) s.Close();
        }
        base.Dispose(disposing);
    }
}
