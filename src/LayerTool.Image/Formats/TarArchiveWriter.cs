using System.Buffers;
using System.Security.Cryptography;
using System.Text;

namespace LayerTool.Image.Formats;

/// <summary>
/// Writes the container tar of an image archive (ustar headers, short ASCII names) to a seekable stream.
/// A member of unknown length is streamed in after a placeholder header that is patched with its size
/// once the data has passed, so a layer is never buffered. The one writer of archive tars (a layer's or a build
/// context's tar is written by <see cref="Layers.Tar.LayerTarWriter"/>).
/// </summary>
public sealed class TarArchiveWriter
{
    private const int Block = 512;
    private readonly Stream _output;
    private readonly long _mtime;
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    public TarArchiveWriter(Stream output, DateTimeOffset modificationTime)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (!output.CanSeek)
        {
            throw new ArgumentException("The archive is written to a seekable stream.", nameof(output));
        }

        _output = output;
        _mtime = Math.Max(0, modificationTime.ToUnixTimeSeconds());
    }

    public bool Contains(string name) => _names.Contains(name);

    public void AddDirectory(string name)
    {
        if (_names.Add(name + "/"))
        {
            WriteHeader(name + "/", '5', 0, 0x1ed);
        }
    }

    public async Task AddFileAsync(string name, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        Claim(name);
        WriteHeader(name, '0', data.Length, 0x1a4);
        await _output.WriteAsync(data, cancellationToken).ConfigureAwait(false);
        await PadAsync(data.Length, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Streams <paramref name="data"/> into a member, returning the sha256 and the length of what was written.</summary>
    public async Task<(Digest Digest, long Size)> AddStreamAsync(string name, Stream data, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(data);
        Claim(name);
        var headerAt = _output.Position;
        WriteHeader(name, '0', 0, 0x1a4);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 17);
        long size = 0;
        try
        {
            int n;
            while ((n = await data.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
            {
                hash.AppendData(buffer, 0, n);
                await _output.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                size += n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        await PadAsync(size, cancellationToken).ConfigureAwait(false);
        var end = _output.Position;
        _output.Position = headerAt;
        WriteHeader(name, '0', size, 0x1a4);
        _output.Position = end;
        return (Digest.FromSha256Hash(hash.GetHashAndReset()), size);
    }

    /// <summary>Writes only the header of a member of known <paramref name="size"/>: its data follows from
    /// elsewhere (see <see cref="ArchiveStream"/>), then <see cref="EndMember"/>.</summary>
    public void BeginMember(string name, long size)
    {
        Claim(name);
        WriteHeader(name, '0', size, 0x1a4);
    }

    /// <summary>A named pipe (FIFO) member, mode 0600: no data; whoever unpacks the archive creates the pipe.</summary>
    public void AddFifo(string name)
    {
        Claim(name);
        WriteHeader(name, '6', 0, 0x180);
    }

    /// <summary>A small member written synchronously (for an in-memory output).</summary>
    public void AddFile(string name, ReadOnlySpan<byte> data)
    {
        BeginMember(name, data.Length);
        _output.Write(data);
        EndMember(data.Length);
    }

    /// <summary>The end-of-archive marker, written synchronously (for an in-memory output).</summary>
    public void Finish() => _output.Write(new byte[Block * 2]);

    /// <summary>Pads a member whose <paramref name="size"/> data bytes were not written here.</summary>
    public void EndMember(long size)
    {
        var pad = (int)((Block - (size % Block)) % Block);
        if (pad > 0) _output.Write(new byte[pad]);
    }

    /// <summary>Writes the end-of-archive marker (two zero blocks).</summary>
    public async Task FinishAsync(CancellationToken cancellationToken)
    {
        await _output.WriteAsync(new byte[Block * 2], cancellationToken).ConfigureAwait(false);
        await _output.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private void Claim(string name)
    {
        if (!_names.Add(name))
        {
            throw new InvalidOperationException($"The archive already has a member '{name}'.");
        }
    }

    private async Task PadAsync(long size, CancellationToken cancellationToken)
    {
        var pad = (int)((Block - (size % Block)) % Block);
        if (pad > 0)
        {
            await _output.WriteAsync(new byte[pad], cancellationToken).ConfigureAwait(false);
        }
    }

    private void WriteHeader(string name, char type, long size, int mode)
    {
        var nameBytes = Encoding.ASCII.GetBytes(name);
        if (nameBytes.Length > 100)
        {
            throw new InvalidOperationException($"Archive member name too long for a ustar header: '{name}'.");
        }

        var header = new byte[Block];
        nameBytes.CopyTo(header, 0);
        Octal(header.AsSpan(100, 8), mode);
        Octal(header.AsSpan(108, 8), 0);
        Octal(header.AsSpan(116, 8), 0);
        if (size < 1L << 33)
        {
            Octal(header.AsSpan(124, 12), size);
        }
        else
        {
            // GNU base-256 for members of 8 GiB and more.
            header[124] = 0x80;
            for (var i = 0; i < 8; i++)
            {
                header[135 - i] = (byte)(size >> (8 * i));
            }
        }

        Octal(header.AsSpan(136, 12), _mtime);
        header[156] = (byte)type;
        "ustar\0"u8.CopyTo(header.AsSpan(257));
        "00"u8.CopyTo(header.AsSpan(263));
        Octal(header.AsSpan(329, 8), 0);
        Octal(header.AsSpan(337, 8), 0);
        header.AsSpan(148, 8).Fill((byte)' ');
        var sum = 0;
        foreach (var b in header)
        {
            sum += b;
        }

        var checksum = Convert.ToString(sum, 8).PadLeft(6, '0');
        Encoding.ASCII.GetBytes(checksum).CopyTo(header, 148);
        header[154] = 0;
        header[155] = (byte)' ';
        _output.Write(header);
    }

    private static void Octal(Span<byte> field, long value)
    {
        var text = Convert.ToString(value, 8).PadLeft(field.Length - 1, '0');
        Encoding.ASCII.GetBytes(text.AsSpan(), field);
        field[^1] = 0;
    }
}
