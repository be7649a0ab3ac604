using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Unicode;
using LayerTool.Image.Layers.Diff;

namespace LayerTool.Image.Layers.Tar;

/// <summary>
/// Writes a layer tar deterministically: ustar headers where the values fit, a PAX header for long or
/// non-ASCII names and link targets, big numbers, long owner names and xattrs (<c>SCHILY.xattr.*</c>).
/// Names are written byte for byte (see <see cref="LayerTarReader"/> for why this codec is hand-written);
/// a PAX name that is not UTF-8 is marked <c>hdrcharset=BINARY</c>. Times are whole seconds (as docker
/// writes them). The SHA-256 of everything written (the layer's diffID) is computed on the way.
/// </summary>
public sealed class LayerTarWriter : IDisposable, IAsyncDisposable
{
    private const int BlockSize = 512;
    private static readonly byte[] Zeros = new byte[BlockSize * 2];

    private readonly Stream _output;
    private readonly bool _leaveOpen;
    private readonly IncrementalHash _sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly List<WrittenLayerEntry>? _written;
    private readonly Action<WrittenLayerEntry>? _onWritten;
    private readonly bool _hashContent = true;
    private readonly bool _hashLayer;
    private bool _measuring; // see ForMeasuring
    private byte[]? _digest;

    /// <param name="output">Where the tar goes.</param>
    /// <param name="leaveOpen">Leave <paramref name="output"/> open when disposed.</param>
    /// <param name="recordEntries">Record every entry written, with the SHA-256 of the content bytes actually
    /// written (see <see cref="WrittenEntries"/>), so the layer can be verified without reading it back.</param>
    /// <param name="hashLayer">False: no diffID (zeros), for a tar that is only sent somewhere (a build context, the
    /// files a build step uploads), which then costs no SHA-256.</param>
    public LayerTarWriter(Stream output, bool leaveOpen = false, bool recordEntries = false, bool hashLayer = true)
    {
        ArgumentNullException.ThrowIfNull(output);
        _output = output;
        _leaveOpen = leaveOpen;
        _hashLayer = hashLayer;
        if (recordEntries) _written = [];
    }

    /// <summary>A writer that hands every entry it writes, as encoded and with its content hash, to
    /// <paramref name="onWritten"/> (e.g. a log on disk) instead of keeping a list.</summary>
    /// <param name="output">Where the tar goes.</param>
    /// <param name="leaveOpen">Leave <paramref name="output"/> open when disposed.</param>
    /// <param name="onWritten">Receives every entry written.</param>
    /// <param name="hashContent">False: record <see cref="WrittenLayerEntry.Identity"/> for a file instead of
    /// the SHA-256 of its content (see <see cref="LayerDiffOptions.HashWrittenContent"/>).</param>
    /// <param name="hashLayer">False: no diffID (zeros; see <see cref="LayerDiffOptions.HashLayer"/>).</param>
    public LayerTarWriter(Stream output, bool leaveOpen, Action<WrittenLayerEntry> onWritten, bool hashContent = true, bool hashLayer = true)
        : this(output, leaveOpen)
    {
        ArgumentNullException.ThrowIfNull(onWritten);
        _onWritten = onWritten;
        _hashContent = hashContent;
        _hashLayer = hashLayer;
    }

    private bool Recording => _written is not null || _onWritten is not null;

    /// <summary>
    /// Names and link targets of at most 100 bytes go into the header's fields as they are even when they are not
    /// ASCII, as GNU tar (and .NET's TarWriter in its GNU format) writes them, instead of into a PAX record: for a tar
    /// whose first entry must fit in its first 1,024 bytes (the engine tells a build context's tar from a
    /// Dockerfile by reading one header there). Longer names still take a PAX record. Off by default: docker's
    /// own layers put every non-ASCII name in a PAX record.
    /// </summary>
    public bool NamesInHeader { get; init; }

    /// <summary>
    /// A writer that writes nothing and reads no content, only adds up <see cref="BytesWritten"/> as the real
    /// tar would be (headers, content sizes, padding, end blocks): the exact size of a layer before it is
    /// written. Its content hashes and diffID are zeros.
    /// </summary>
    public static LayerTarWriter ForMeasuring() => new(Stream.Null, leaveOpen: true) { _measuring = true };

    /// <summary>The entries written so far, in order, as they were encoded (mode's permission bits, the size
    /// written) with their content hash; null unless constructed with <c>recordEntries</c>.</summary>
    public IReadOnlyList<WrittenLayerEntry>? WrittenEntries => _written;

    /// <summary>The SHA-256 of the content of the last entry written, when it is a regular file and entries are recorded.</summary>
    public byte[]? LastContentHash { get; private set; }

    /// <summary>Bytes written so far (the tar's size once finished).</summary>
    public long BytesWritten { get; private set; }

    /// <summary>Entries written so far.</summary>
    public long EntryCount { get; private set; }

    /// <summary><c>sha256:&lt;hex&gt;</c> of the whole uncompressed tar; available after <see cref="FinishAsync"/>.</summary>
    public string DiffId => _digest is null
        ? throw new InvalidOperationException("the tar is not finished")
        : "sha256:" + Convert.ToHexStringLower(_digest);

    /// <summary>Writes one entry; a regular file's content is copied from <paramref name="content"/> (exactly <see cref="LayerEntry.Size"/> bytes).</summary>
    /// <param name="entry">The entry.</param>
    /// <param name="content">A regular file's bytes.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <param name="knownHash">The SHA-256 of <paramref name="content"/> when the caller has it (checked or to be
    /// checked by the caller): recorded as it is when the writer does not hash what it writes.</param>
    public async ValueTask WriteEntryAsync(LayerEntry entry, Stream? content, CancellationToken cancellationToken, byte[]? knownHash = null)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (_digest is not null) throw new InvalidOperationException("the tar is finished");
        var size = entry.Type == LayerEntryType.RegularFile ? entry.Size : 0;
        if (size > 0 && content is null) throw new ArgumentException($"'{entry.Name}' needs content", nameof(content));

        var headers = BuildHeaders(entry, size);
        if (_measuring)
        {
            BytesWritten += headers.Length + size + Pad(size);
            LastContentHash = entry.Type == LayerEntryType.RegularFile ? new byte[32] : null;
            EntryCount++;
            return;
        }
        await WriteAsync(headers, cancellationToken).ConfigureAwait(false);
        var file = Recording && entry.Type == LayerEntryType.RegularFile;
        using var fileHash = file && _hashContent ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null;
        if (size > 0)
        {
            await CopyContentAsync(entry, content!, size, fileHash, cancellationToken).ConfigureAwait(false);
            await WriteAsync(Zeros.AsMemory(0, Pad(size)), cancellationToken).ConfigureAwait(false);
        }
        var contentHash = fileHash?.GetHashAndReset() ?? (file ? knownHash ?? WrittenLayerEntry.Identity(EntryCount) : null);
        LastContentHash = contentHash;
        if (Recording)
        {
            var written = new WrittenLayerEntry(Encoded(entry, size), contentHash);
            _written?.Add(written);
            _onWritten?.Invoke(written);
        }
        EntryCount++;
    }

    /// <summary>The entry as its headers carry it (what a reader gets back for the fields verification compares).</summary>
    private static LayerEntry Encoded(LayerEntry entry, long size)
    {
        var device = entry.Type is LayerEntryType.CharacterDevice or LayerEntryType.BlockDevice;
        var link = entry.Type is LayerEntryType.Symlink or LayerEntryType.HardLink;
        return entry with
        {
            Mode = entry.Mode & 0xFFF,
            Size = size,
            LinkTarget = link ? entry.LinkTarget : [],
            DevMajor = device ? entry.DevMajor : 0,
            DevMinor = device ? entry.DevMinor : 0,
        };
    }

    private byte[] BuildHeaders(LayerEntry entry, long size)
    {
        var pax = new SortedDictionary<string, byte[]>(StringComparer.Ordinal);
        var path = entry.Path.IsRoot ? "./"u8.ToArray() : entry.Path.Bytes.ToArray();
        if (entry.IsDirectory && !entry.Path.IsRoot) path = [.. path, (byte)'/'];

        Span<byte> h = stackalloc byte[BlockSize];
        if (!TryPutName(h, path))
        {
            pax["path"] = path;
            if (!Utf8.IsValid(path)) pax["hdrcharset"] = "BINARY"u8.ToArray();
            PutText(h[..100], Fallback(path, 100));
        }

        if (entry.Type is LayerEntryType.Symlink or LayerEntryType.HardLink)
        {
            var link = entry.LinkTarget;
            if (link.Length <= 100 && (NamesInHeader || IsAscii(link))) link.CopyTo(h.Slice(157, 100));
            else
            {
                pax["linkpath"] = link;
                if (!Utf8.IsValid(link)) pax["hdrcharset"] = "BINARY"u8.ToArray();
                PutText(h.Slice(157, 100), Fallback(link, 100));
            }
        }

        TarNumbers.TryWriteOctal(h.Slice(100, 8), entry.Mode & 0xFFF);
        PutNumber(h.Slice(108, 8), entry.Uid, "uid", pax);
        PutNumber(h.Slice(116, 8), entry.Gid, "gid", pax);
        PutNumber(h.Slice(124, 12), size, "size", pax);
        var seconds = (long)Math.Floor((entry.ModificationTime - DateTimeOffset.UnixEpoch).TotalSeconds);
        PutNumber(h.Slice(136, 12), seconds, "mtime", pax);
        h[156] = entry.Type switch
        {
            LayerEntryType.RegularFile => (byte)'0',
            LayerEntryType.HardLink => (byte)'1',
            LayerEntryType.Symlink => (byte)'2',
            LayerEntryType.CharacterDevice => (byte)'3',
            LayerEntryType.BlockDevice => (byte)'4',
            LayerEntryType.Directory => (byte)'5',
            LayerEntryType.Fifo => (byte)'6',
            _ => throw new ArgumentException($"unknown entry type {entry.Type}", nameof(entry)),
        };
        "ustar\0"u8.CopyTo(h.Slice(257, 6));
        "00"u8.CopyTo(h.Slice(263, 2));
        PutOwner(h.Slice(265, 32), entry.UserName, "uname", pax);
        PutOwner(h.Slice(297, 32), entry.GroupName, "gname", pax);
        if (entry.Type is LayerEntryType.CharacterDevice or LayerEntryType.BlockDevice)
        {
            if (!TarNumbers.TryWriteOctal(h.Slice(329, 8), entry.DevMajor)) TarNumbers.WriteBase256(h.Slice(329, 8), entry.DevMajor);
            if (!TarNumbers.TryWriteOctal(h.Slice(337, 8), entry.DevMinor)) TarNumbers.WriteBase256(h.Slice(337, 8), entry.DevMinor);
        }
        foreach (var (name, value) in entry.Xattrs)
            pax["SCHILY.xattr." + name] = value;

        if (pax.Count > 0)
        {
            var records = EncodePax(pax);
            var paxHeader = new byte[BlockSize];
            var ph = paxHeader.AsSpan();
            PutText(ph[..100], Fallback([.. "PaxHeader/"u8, .. entry.Path.Name], 100));
            TarNumbers.TryWriteOctal(ph.Slice(100, 8), 0x1A4);
            TarNumbers.TryWriteOctal(ph.Slice(108, 8), 0);
            TarNumbers.TryWriteOctal(ph.Slice(116, 8), 0);
            TarNumbers.TryWriteOctal(ph.Slice(124, 12), records.Length);
            TarNumbers.TryWriteOctal(ph.Slice(136, 12), 0);
            ph[156] = (byte)'x';
            "ustar\0"u8.CopyTo(ph.Slice(257, 6));
            "00"u8.CopyTo(ph.Slice(263, 2));
            Checksum(ph);
            var all = new byte[BlockSize + records.Length + Pad(records.Length) + BlockSize];
            paxHeader.CopyTo(all, 0);
            records.CopyTo(all, BlockSize);
            Checksum(h);
            h.CopyTo(all.AsSpan(all.Length - BlockSize));
            return all;
        }

        Checksum(h);
        return h.ToArray();
    }

    /// <summary>Writes the end-of-archive marker and flushes; the diffID is then known.</summary>
    public async ValueTask FinishAsync(CancellationToken cancellationToken)
    {
        if (_digest is not null) return;
        if (_measuring)
        {
            BytesWritten += Zeros.Length;
            _digest = new byte[32];
            return;
        }
        await WriteAsync(Zeros, cancellationToken).ConfigureAwait(false);
        await _output.FlushAsync(cancellationToken).ConfigureAwait(false);
        _digest = _hashLayer ? _sha.GetHashAndReset() : new byte[32];
    }

    private async ValueTask CopyContentAsync(LayerEntry entry, Stream content, long size, IncrementalHash? fileHash, CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(81920);
        try
        {
            var left = size;
            while (left > 0)
            {
                var n = await content.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, left)), ct).ConfigureAwait(false);
                if (n == 0) throw new ImageFormatException($"content of '{entry.Name}' is shorter than its size ({size - left} of {size} bytes)");
                fileHash?.AppendData(buffer, 0, n);
                await WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                left -= n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        if (data.IsEmpty) return;
        if (_hashLayer) _sha.AppendData(data.Span);
        await _output.WriteAsync(data, ct).ConfigureAwait(false);
        BytesWritten += data.Length;
    }

    private bool TryPutName(Span<byte> h, byte[] path)
    {
        if (!NamesInHeader && !IsAscii(path)) return false;
        if (path.Length <= 100)
        {
            path.CopyTo(h);
            return true;
        }
        // ustar split: prefix (≤155) '/' name (≤100), cut at a slash.
        var limit = Math.Min(path.Length - 1, 155);
        for (var i = limit; i > 0; i--)
        {
            if (path[i] != (byte)'/') continue;
            var nameLength = path.Length - i - 1;
            if (nameLength == 0) continue; // the trailing slash of a directory
            if (nameLength > 100) return false;
            path.AsSpan(0, i).CopyTo(h.Slice(345, 155));
            path.AsSpan(i + 1).CopyTo(h[..100]);
            return true;
        }
        return false;
    }

    private static void PutNumber(Span<byte> field, long value, string key, SortedDictionary<string, byte[]> pax)
    {
        if (TarNumbers.TryWriteOctal(field, value)) return;
        TarNumbers.TryWriteOctal(field, 0);
        pax[key] = TarNumbers.FormatDecimal(value);
    }

    private static void PutOwner(Span<byte> field, string name, string key, SortedDictionary<string, byte[]> pax)
    {
        var bytes = Encoding.UTF8.GetBytes(name);
        if (bytes.Length <= field.Length && IsAscii(bytes)) bytes.CopyTo(field);
        else pax[key] = bytes;
    }

    private static bool IsAscii(ReadOnlySpan<byte> bytes) => !bytes.ContainsAnyInRange((byte)0x80, (byte)0xFF);

    private static byte[] Fallback(ReadOnlySpan<byte> bytes, int max)
    {
        var n = Math.Min(bytes.Length, max);
        var r = bytes[..n].ToArray();
        for (var i = 0; i < r.Length; i++)
        {
            if (r[i] >= 0x80) r[i] = (byte)'_';
        }
        return r;
    }

    private static void PutText(Span<byte> field, byte[] value) => value.AsSpan(0, Math.Min(value.Length, field.Length)).CopyTo(field);

    private static byte[] EncodePax(SortedDictionary<string, byte[]> pax)
    {
        // Sized exactly first: a long path's record is up to 64 KiB, and a growing buffer would double past the
        // large-object heap's threshold on every such entry.
        var records = new List<(byte[] Length, byte[] Key, byte[] Value)>(pax.Count);
        var total = 0;
        foreach (var (key, value) in pax)
        {
            var k = Encoding.UTF8.GetBytes(key);
            var body = k.Length + value.Length + 3; // ' ', '=', '\n'
            var digits = 1;
            while ((body + digits).ToString(System.Globalization.CultureInfo.InvariantCulture).Length != digits) digits++;
            records.Add((TarNumbers.FormatDecimal(body + digits), k, value));
            total += body + digits;
        }
        var bytes = new byte[total];
        var at = 0;
        foreach (var (length, key, value) in records)
        {
            length.CopyTo(bytes, at);
            at += length.Length;
            bytes[at++] = (byte)' ';
            key.CopyTo(bytes, at);
            at += key.Length;
            bytes[at++] = (byte)'=';
            value.CopyTo(bytes, at);
            at += value.Length;
            bytes[at++] = (byte)'\n';
        }
        return bytes;
    }

    private static void Checksum(Span<byte> h)
    {
        h.Slice(148, 8).Fill((byte)' ');
        long sum = 0;
        foreach (var b in h) sum += b;
        TarNumbers.TryWriteOctal(h.Slice(148, 7), sum);
        h[155] = (byte)' ';
    }

    private static int Pad(long size) => (int)((BlockSize - (size % BlockSize)) % BlockSize);

    public void Dispose()
    {
        _sha.Dispose();
        if (!_leaveOpen) _output.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        _sha.Dispose();
        if (!_leaveOpen) await _output.DisposeAsync().ConfigureAwait(false);
    }
}
