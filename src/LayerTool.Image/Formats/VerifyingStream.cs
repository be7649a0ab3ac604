using System.Security.Cryptography;

namespace LayerTool.Image.Formats;

/// <summary>
/// A read-only stream that hashes what passes through and, when the inner stream ends, checks the digest
/// (and the size, when one is expected) — throwing <see cref="ImageFormatException"/> on a mismatch from
/// the read that reaches the end. Too many bytes fail as soon as they are read.
/// </summary>
public sealed class VerifyingStream : ReadOnlyStream
{
    private readonly Stream _inner;
    private readonly Digest _expected;
    private readonly long? _expectedSize;
    private readonly string _what;
    private readonly bool _leaveOpen;
    private readonly IncrementalHash _hash;
    private long _read;
    private bool _done;

    /// <param name="inner">The stream to read.</param>
    /// <param name="expected">The digest the bytes must have.</param>
    /// <param name="expectedSize">The number of bytes, if known.</param>
    /// <param name="what">Names the data in errors, e.g. "layer 3 of image.tar (blobs/sha256/ab…)".</param>
    /// <param name="leaveOpen">Whether disposing this stream leaves <paramref name="inner"/> open.</param>
    public VerifyingStream(Stream inner, Digest expected, long? expectedSize, string what, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(inner);
        _inner = inner;
        _expected = expected;
        _expectedSize = expectedSize;
        _what = what;
        _leaveOpen = leaveOpen;
        _hash = expected.CreateHash();
    }

    /// <summary>What the data is, as given to the constructor (names the layer in the errors of whoever reads it).</summary>
    public string What => _what;

    /// <summary>Bytes read so far.</summary>
    public long BytesRead => _read;

    /// <summary>Whether the end was reached and the bytes matched.</summary>
    public bool Verified { get; private set; }

    public override long Length => _expectedSize ?? throw new NotSupportedException();

    public override long Position
    {
        get => _read;
        set => throw new NotSupportedException();
    }

    public override int Read(Span<byte> buffer)
    {
        if (buffer.IsEmpty)
        {
            return 0;
        }

        var n = _inner.Read(buffer);
        return Account(buffer[..n]);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty)
        {
            return 0;
        }

        var n = await _inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        return Account(buffer.Span[..n]);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash.Dispose();
            if (!_leaveOpen)
            {
                _inner.Dispose();
            }
        }

        base.Dispose(disposing);
    }

    private int Account(ReadOnlySpan<byte> data)
    {
        if (data.Length > 0)
        {
            _read += data.Length;
            if (_read > _expectedSize)
            {
                throw new ImageFormatException($"{_what}: more than the expected {_expectedSize} bytes.");
            }

            _hash.AppendData(data);
            return data.Length;
        }

        if (!_done)
        {
            _done = true;
            if (_expectedSize is { } size && _read != size)
            {
                throw new ImageFormatException($"{_what}: truncated: {_read} bytes, expected {size}.");
            }

            Span<byte> hash = stackalloc byte[64];
            var length = _hash.GetHashAndReset(hash);
            if (!_expected.Matches(hash[..length]))
            {
                throw new ImageFormatException(
                    $"{_what}: digest mismatch: expected {_expected}, got {_expected.Algorithm}:{Convert.ToHexStringLower(hash[..length])}.");
            }

            Verified = true;
        }

        return 0;
    }
}
