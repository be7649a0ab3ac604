namespace LayerTool.Image.Layers;

/// <summary>
/// Diff and verification in one call: what <c>squash</c> and <c>COMPRESS</c> run once they have a base
/// index and the final filesystem's stream.
/// </summary>
public static class LayerSquash
{
    /// <summary>
    /// Writes the layer that turns <paramref name="baseIndex"/> into <paramref name="final"/> to
    /// <paramref name="layer"/> (readable and seekable, e.g. a temp file), then applies it to the base and
    /// checks that the result equals the final filesystem entry by entry.
    /// </summary>
    /// <exception cref="ImageFormatException">The check failed; the message lists the first differences.
    /// Nothing may be tagged or written from this layer.</exception>
    public static async Task<LayerDiffResult> WriteVerifiedAsync(FsIndex baseIndex, ILayerEntrySource final, Stream layer,
        LayerDiffOptions? options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(layer);
        if (!layer.CanSeek || !layer.CanRead) throw new ArgumentException("the layer stream must be readable and seekable to be verified", nameof(layer));
        var start = layer.Position;
        var result = await LayerDiff.WriteAsync(baseIndex, final, layer, options, cancellationToken).ConfigureAwait(false);
        var end = layer.Position;
        layer.Position = start;
        var differences = await LayerVerifier.VerifyAsync(baseIndex, new BoundedStream(layer, end - start), result.FinalIndex, cancellationToken, 20)
            .ConfigureAwait(false);
        layer.Position = end;
        if (differences.Count > 0)
        {
            throw new ImageFormatException(
                "the squashed layer does not reproduce the image's filesystem (this is a LayerTool bug; nothing was tagged):" +
                Environment.NewLine + string.Join(Environment.NewLine, differences.Select(d => "  " + d)));
        }
        return result;
    }

    /// <summary>Reads at most a given number of bytes of an inner stream, leaving it open.</summary>
    private sealed class BoundedStream(Stream inner, long size) : Stream
    {
        private readonly long _length = size;
        private long _left = size;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => _length;

        public override long Position { get => _length - _left; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = inner.Read(buffer[..(int)Math.Min(buffer.Length, _left)]);
            _left -= n;
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = await inner.ReadAsync(buffer[..(int)Math.Min(buffer.Length, _left)], cancellationToken).ConfigureAwait(false);
            _left -= n;
            return n;
        }

        public override void Flush() { }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
