using System.IO.Compression;

namespace LayerTool.Image.Formats;

/// <summary>How a layer blob is compressed, told by its first bytes (never by its name or media type).</summary>
public enum Compression
{
    None,
    Gzip,
    Zstd,
    Bzip2,
    Xz,
}

/// <summary>Detects and undoes layer compression: gzip is read with the BCL; zstd, bzip2 and xz are refused clearly.</summary>
public static class LayerCompression
{
    /// <summary>The compression of data starting with <paramref name="head"/> (at least 6 bytes when available).</summary>
    public static Compression Detect(ReadOnlySpan<byte> head)
    {
        if (head.StartsWith((ReadOnlySpan<byte>)[0x1f, 0x8b]))
        {
            return Compression.Gzip;
        }

        if (head.StartsWith((ReadOnlySpan<byte>)[0x28, 0xb5, 0x2f, 0xfd]))
        {
            return Compression.Zstd;
        }

        if (head.StartsWith("BZh"u8))
        {
            return Compression.Bzip2;
        }

        if (head.StartsWith((ReadOnlySpan<byte>)[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))
        {
            return Compression.Xz;
        }

        return Compression.None;
    }

    /// <summary>The OCI layer media type for a compression.</summary>
    public static string MediaType(Compression compression) => compression switch
    {
        Compression.Gzip => MediaTypes.OciLayerGzip,
        Compression.Zstd => MediaTypes.OciLayerZstd,
        _ => MediaTypes.OciLayer,
    };

    /// <summary>Reads the first bytes of a stream and detects its compression.</summary>
    public static Compression Detect(Stream stream, out Stream rewound)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var head = new byte[6];
        var n = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        rewound = new PrefixedStream(head.AsMemory(0, n), stream);
        return Detect(head.AsSpan(0, n));
    }

    /// <summary>
    /// The uncompressed bytes of <paramref name="blob"/>: gzip is decompressed, an uncompressed tar passes
    /// through; zstd, bzip2 and xz throw <see cref="ImageFormatException"/>. Disposing the result disposes
    /// <paramref name="blob"/>. <paramref name="what"/> names the blob in errors.
    /// </summary>
    public static Stream Decompress(Stream blob, string what)
    {
        ArgumentNullException.ThrowIfNull(blob);
        var compression = Detect(blob, out var stream);
        return compression switch
        {
            Compression.None => stream,
            Compression.Gzip => new GzipLayerStream(new GZipStream(stream, CompressionMode.Decompress, leaveOpen: false), what),
            _ => Refuse(stream, compression, what),
        };
    }

    private static Stream Refuse(Stream stream, Compression compression, string what)
    {
        stream.Dispose();
        var name = compression.ToString().ToLowerInvariant();
        throw new ImageFormatException(
            $"{what}: the layer is {name}-compressed, which LayerTool cannot read yet (only gzip and uncompressed layers are supported). "
            + "Re-save the image with gzip or uncompressed layers.");
    }

    /// <summary>A gzip decompressor whose corrupt-data errors name the blob (<see cref="ImageFormatException"/>, not the BCL's InvalidDataException).</summary>
    private sealed class GzipLayerStream(GZipStream inner, string what) : ReadOnlyStream
    {
        public override int Read(Span<byte> buffer)
        {
            try
            {
                return inner.Read(buffer);
            }
            catch (InvalidDataException e)
            {
                throw Corrupt(e);
            }
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            try
            {
                return await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
            catch (InvalidDataException e)
            {
                throw Corrupt(e);
            }
        }

        private ImageFormatException Corrupt(InvalidDataException e) =>
            new($"{what}: the gzip-compressed layer is corrupt ({e.Message.TrimEnd('.')})", e);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }

    /// <summary>A stream that first returns some bytes already read, then the rest of the inner stream.</summary>
    private sealed class PrefixedStream(ReadOnlyMemory<byte> prefix, Stream inner) : ReadOnlyStream
    {
        private ReadOnlyMemory<byte> _prefix = prefix;

        public override int Read(Span<byte> buffer)
        {
            if (_prefix.Length > 0)
            {
                var n = Math.Min(buffer.Length, _prefix.Length);
                _prefix.Span[..n].CopyTo(buffer);
                _prefix = _prefix[n..];
                return n;
            }

            return inner.Read(buffer);
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_prefix.Length > 0)
            {
                return ValueTask.FromResult(Read(buffer.Span));
            }

            return inner.ReadAsync(buffer, cancellationToken);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
