using System.Buffers;
using System.Text;

namespace LayerTool.Image.Layers.Tar;

/// <summary>
/// Streams the entries of an uncompressed layer tar: ustar, GNU long names/links (<c>L</c>/<c>K</c>),
/// PAX extended and global headers (<c>x</c>/<c>g</c>: path, linkpath, size, uid, gid, uname, gname,
/// mtime with fractions, <c>SCHILY.xattr.*</c>, <c>LIBARCHIVE.xattr.*</c>) and base-256 numbers.
/// Sparse files are refused. The one tar reader of LayerTool apart from the archive index: with
/// <c>namesAsWritten</c> it also reads tars that are not layers (an archive ADD extracts, the engine's archive of a
/// path, a <c>docker save</c> stream).
/// </summary>
/// <remarks>
/// Written by hand on purpose: .NET's own TarReader and SharpZipLib decode entry names as UTF-8, so a
/// non-UTF-8 name (legal on Linux, and common in Go-written tars, which fall back to the GNU format for
/// such names) comes back with U+FFFD in it and can never be written back as it was. A layer must
/// round-trip every name byte for byte, so this reader keeps names, link targets and xattr values as
/// bytes. Content is never buffered: <see cref="Content"/> reads straight from the underlying stream.
/// </remarks>
public sealed class LayerTarReader : ILayerEntrySource, IDisposable, IAsyncDisposable
{
    private const int BlockSize = 512;
    private const int MaxMetaSize = 16 << 20;

    private readonly Stream _stream;
    private readonly Stream _inner;
    private readonly bool _leaveOpen;
    private readonly bool _asWritten;
    private readonly byte[] _block = new byte[BlockSize];
    private readonly Dictionary<string, byte[]> _global = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _names = new(StringComparer.Ordinal);
    // The symlinks this tar has written so far (path → target), for entries written below them.
    private readonly Dictionary<LayerPath, byte[]> _symlinks = [];
    private long _position;
    private long _remaining;
    private long _padding;
    private ContentStream? _content;
    private bool _done;

    /// <param name="stream">The uncompressed tar.</param>
    /// <param name="leaveOpen">Leave <paramref name="stream"/> open when this reader is disposed.</param>
    /// <param name="source">Names the tar in errors (e.g. "image.tar: layer 2 of 5"); by default the name a
    /// layer's <see cref="Formats.VerifyingStream"/> carries, if <paramref name="stream"/> is one.</param>
    /// <param name="namesAsWritten">For a tar that is not a layer (an archive that ADD extracts, the engine's archive
    /// of a path, an image archive): an absolute name, or one whose <c>..</c> climbs above the root, is confined to
    /// the root instead of refused; parents are not followed through the tar's own symlinks; a hard link's
    /// <see cref="LayerEntry.LinkTarget"/> is its target as written. <see cref="NameAsWritten"/> has the exact name.</param>
    public LayerTarReader(Stream stream, bool leaveOpen = false, string? source = null, bool namesAsWritten = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        Source = source ?? (stream as Formats.VerifyingStream)?.What;
        // Headers are read 512 bytes at a time: buffer a stream that has no buffer of its own (a socket,
        // a pipe). A seekable stream (a file) is used as it is, so skipping content can seek.
        _stream = stream.CanSeek || stream is BufferedStream ? stream : new BufferedStream(stream, 1 << 16);
        _inner = stream;
        _leaveOpen = leaveOpen;
        _asWritten = namesAsWritten;
    }

    /// <summary>The current entry's name exactly as the tar holds it (after PAX and GNU long names, before any
    /// cleaning: a directory's trailing slash, a leading <c>./</c> or <c>/</c> are kept).</summary>
    public ReadOnlyMemory<byte> NameAsWritten { get; private set; }

    /// <summary>The current entry's content (valid until the next <see cref="ReadNextAsync"/>).</summary>
    public Stream Content => (Stream?)_content ?? Stream.Null;

    /// <summary>Where the current entry's content starts in the underlying stream (for re-reading a seekable tar).</summary>
    public long ContentOffset { get; private set; }

    /// <summary>Bytes consumed from the underlying stream so far.</summary>
    public long Position => _position;

    /// <summary>What the tar is (a layer of an archive, an export), named in the errors; null when not known.</summary>
    public string? Source { get; }

    public async ValueTask<LayerEntry?> ReadNextAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await ReadNextCoreAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (ImageFormatException e) when (Source is not null && !e.Message.StartsWith(Source, StringComparison.Ordinal))
        {
            throw new ImageFormatException($"{Source}: {e.Message}", e);
        }
    }

    private async ValueTask<LayerEntry?> ReadNextCoreAsync(CancellationToken cancellationToken)
    {
        if (_done) return null;
        if (_content is not null) _content.Detach();
        _content = null;
        await SkipAsync(_remaining + _padding, cancellationToken).ConfigureAwait(false);
        _remaining = _padding = 0;

        Dictionary<string, byte[]>? pax = null;
        byte[]? longName = null;
        byte[]? longLink = null;
        while (true)
        {
            var headerOffset = _position;
            var n = await ReadFullyAsync(_block, cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                if (pax is not null || longName is not null || longLink is not null)
                    throw new ImageFormatException($"truncated tar: archive ends after an extended header at offset {headerOffset}");
                _done = true;
                return null;
            }
            if (n < BlockSize)
                throw new ImageFormatException($"truncated tar: incomplete header at offset {headerOffset} ({n} of 512 bytes)");
            if (_block.AsSpan().IndexOfAnyExcept((byte)0) < 0)
            {
                // End of archive: consume the second zero block and any record padding, so the
                // stream is left at its end and Position is the tar's full size.
                _done = true;
                await DrainAsync(cancellationToken).ConfigureAwait(false);
                return null;
            }
            CheckChecksum(headerOffset);

            var flag = (char)_block[156];
            var size = Number(124, 12, "size", headerOffset);
            if (size < 0) throw new ImageFormatException($"corrupt tar header at offset {headerOffset}: negative size");
            switch (flag)
            {
                case 'x':
                    pax ??= new Dictionary<string, byte[]>(StringComparer.Ordinal);
                    ParsePax(await ReadMetaAsync(size, headerOffset, cancellationToken).ConfigureAwait(false), pax, headerOffset);
                    continue;
                case 'g':
                    ParsePax(await ReadMetaAsync(size, headerOffset, cancellationToken).ConfigureAwait(false), _global, headerOffset);
                    continue;
                case 'L':
                    longName = TrimNul(await ReadMetaAsync(size, headerOffset, cancellationToken).ConfigureAwait(false));
                    continue;
                case 'K':
                    longLink = TrimNul(await ReadMetaAsync(size, headerOffset, cancellationToken).ConfigureAwait(false));
                    continue;
                default:
                    break;
            }
            var entry = BuildEntry(flag, size, pax, longName, longLink, headerOffset);
            if (!_asWritten) entry = FollowLinkedParents(entry, headerOffset);
            var dataSize = EffectiveSize(size, pax);
            _remaining = dataSize;
            _padding = Pad(dataSize);
            ContentOffset = _position;
            if (entry.Type == LayerEntryType.RegularFile && dataSize > 0)
                _content = new ContentStream(this, entry);
            return entry;
        }
    }

    /// <summary>
    /// An entry whose parent is a symlink written earlier in the same tar, put where the engine's applier puts it.
    /// The engine extracts a layer into an empty directory, chrooted there, and the kernel follows every symlink
    /// in the parents of a name: <c>link -&gt; /</c> then <c>link/bin/sh</c> writes <c>bin/sh</c> of the layer
    /// (measured on Docker 20.10, overlay2: the image's <c>/bin/sh</c> is replaced). So such an entry acts on the
    /// path its parents resolve to, confined to the root (an absolute target starts at the root, <c>..</c> stops
    /// there); symlinks of lower layers are not seen. A hard link's target resolves the same way. The last
    /// component is never followed (an entry at a symlink's path replaces the symlink).
    /// </summary>
    private LayerEntry FollowLinkedParents(LayerEntry entry, long offset)
    {
        var path = entry.Path;
        if (_symlinks.Count > 0)
        {
            var resolved = ResolveParents(path, offset);
            var link = entry.Type == LayerEntryType.HardLink ? ResolveParents(entry.HardLinkTarget, offset) : null;
            if (resolved != path || (link is not null && link != entry.HardLinkTarget))
            {
                if (resolved.IsRoot)
                    throw new ImageFormatException($"'{path}' (entry at offset {offset}) resolves to the root through a symlink of the layer");
                entry = entry with { Path = resolved, LinkTarget = link is null ? entry.LinkTarget : link.Bytes.ToArray() };
                path = resolved;
            }
            // What is written at a symlink's path (or whites it out) replaces it.
            if (Whiteouts.Classify(path) == WhiteoutKind.Whiteout)
            {
                var gone = Whiteouts.Target(path);
                foreach (var key in _symlinks.Keys.Where(k => k == gone || gone.IsAncestorOf(k)).ToList()) _symlinks.Remove(key);
            }
            else
            {
                _symlinks.Remove(path);
            }
        }
        if (entry.Type == LayerEntryType.Symlink) _symlinks[path] = entry.LinkTarget;
        return entry;
    }

    /// <summary><paramref name="path"/> with every parent that is a symlink of this tar followed (see <see cref="FollowLinkedParents"/>).</summary>
    private LayerPath ResolveParents(LayerPath path, long offset)
    {
        const int maxHops = 40; // Linux's own limit (ELOOP)
        for (var hops = 0; ; hops++)
        {
            LayerPath? link = null;
            byte[]? target = null;
            foreach (var ancestor in path.Ancestors())
            {
                if (_symlinks.TryGetValue(ancestor, out target))
                {
                    link = ancestor;
                    break;
                }
            }
            if (link is null) return path;
            if (hops == maxHops)
                throw new ImageFormatException($"'{LayerPath.Abbreviate(path.Bytes)}' (entry at offset {offset}): too many levels of symbolic links in its parents");
            var rest = path.Bytes[(link.Bytes.Length + 1)..];
            var start = target!.Length > 0 && target[0] == (byte)'/' ? LayerPath.Root : link.Parent;
            var joined = new byte[start.Bytes.Length + 1 + target.Length + 1 + rest.Length];
            start.Bytes.CopyTo(joined);
            joined[start.Bytes.Length] = (byte)'/';
            target.CopyTo(joined, start.Bytes.Length + 1);
            joined[start.Bytes.Length + 1 + target.Length] = (byte)'/';
            rest.CopyTo(joined.AsSpan(start.Bytes.Length + 2 + target.Length));
            path = LayerPath.Confine(joined);
            if (LayerPath.CheckLimits(path.Bytes) is { } tooLong)
                throw new ImageFormatException($"'{LayerPath.Abbreviate(path.Bytes)}' (entry at offset {offset}), reached through a symlink of the layer: {tooLong}");
        }
    }

    private long EffectiveSize(long size, Dictionary<string, byte[]>? pax)
    {
        var v = Lookup(pax, "size");
        if (v is null) return size;
        if (!TarNumbers.TryParseDecimal(v, out var s) || s < 0)
            throw new ImageFormatException($"corrupt PAX size '{Encoding.ASCII.GetString(v)}'");
        return s;
    }

    private byte[]? Lookup(Dictionary<string, byte[]>? pax, string key)
    {
        if (pax is not null && pax.TryGetValue(key, out var v)) return v.Length == 0 ? null : v;
        return _global.TryGetValue(key, out var g) && g.Length > 0 ? g : null;
    }

    private LayerEntry BuildEntry(char flag, long headerSize, Dictionary<string, byte[]>? pax, byte[]? longName, byte[]? longLink, long offset)
    {
        var block = _block.AsSpan();
        var magic = block.Slice(257, 8);
        var isPosix = magic[..6].SequenceEqual("ustar\0"u8);

        byte[] rawName;
        var paxPath = Lookup(pax, "path");
        if (paxPath is not null) rawName = paxPath;
        else if (longName is not null) rawName = longName;
        else
        {
            var name = Field(block.Slice(0, 100));
            // The prefix field exists only in POSIX ustar; star puts atime/ctime after 131 bytes of it.
            var prefixLength = block.Slice(508, 4).SequenceEqual("tar\0"u8) ? 131 : 155;
            var prefix = isPosix ? Field(block.Slice(345, prefixLength)) : [];
            rawName = prefix.Length > 0 ? [.. prefix, (byte)'/', .. name] : name.ToArray();
        }
        var display = LayerPath.Abbreviate(rawName, 256);
        if (LayerPath.CheckLimits(rawName) is { } tooLong)
            throw new ImageFormatException($"'{display}' (entry at offset {offset}): {tooLong}");

        var type = flag switch
        {
            '0' or '\0' or '7' => rawName.Length > 0 && rawName[^1] == (byte)'/' ? LayerEntryType.Directory : LayerEntryType.RegularFile,
            '1' => LayerEntryType.HardLink,
            '2' => LayerEntryType.Symlink,
            '3' => LayerEntryType.CharacterDevice,
            '4' => LayerEntryType.BlockDevice,
            '5' => LayerEntryType.Directory,
            '6' => LayerEntryType.Fifo,
            'S' => throw new ImageFormatException($"'{display}': old GNU sparse files are not supported in layers (offset {offset})"),
            _ => throw new ImageFormatException($"'{display}': unsupported tar entry type '{Printable(flag)}' at offset {offset}"),
        };
        if (pax is not null && pax.Keys.Any(k => k.StartsWith("GNU.sparse.", StringComparison.Ordinal)))
            throw new ImageFormatException($"'{display}': PAX sparse files are not supported in layers (offset {offset})");

        NameAsWritten = rawName;
        LayerPath path;
        if (_asWritten) path = LayerPath.Confine(rawName);
        else if (!LayerPath.TryClean(rawName, out path, out var error))
            throw new ImageFormatException($"invalid path '{display}' in layer: {error}");

        byte[] link = [];
        if (type is LayerEntryType.HardLink or LayerEntryType.Symlink)
        {
            var rawLink = Lookup(pax, "linkpath") ?? longLink ?? Field(block.Slice(157, 100)).ToArray();
            if (LayerPath.CheckLimits(rawLink) is { } linkTooLong)
                throw new ImageFormatException($"'{display}' (entry at offset {offset}): its link target '{LayerPath.Abbreviate(rawLink)}' is too long: {linkTooLong}");
            if (type == LayerEntryType.HardLink && !_asWritten)
            {
                if (!LayerPath.TryClean(rawLink, out var target, out var linkError) || target.IsRoot)
                    throw new ImageFormatException($"hard link '{display}' points outside the layer's root: '{LayerPath.Abbreviate(rawLink, 256)}' ({linkError ?? "the root itself"})");
                link = target.Bytes.ToArray();
            }
            else
            {
                link = rawLink;
            }
        }

        var mode = (int)(Number(100, 8, "mode", offset) & 0xFFF);
        var uid = PaxNumber(pax, "uid") ?? Number(108, 8, "uid", offset);
        var gid = PaxNumber(pax, "gid") ?? Number(116, 8, "gid", offset);
        var mtime = DateTimeOffset.UnixEpoch;
        var paxTime = Lookup(pax, "mtime");
        if (paxTime is not null)
        {
            if (!TarNumbers.TryParsePaxTime(paxTime, out mtime))
                throw new ImageFormatException($"'{display}': corrupt PAX mtime");
        }
        else
        {
            var secs = Number(136, 12, "mtime", offset);
            try { mtime = DateTimeOffset.UnixEpoch.AddSeconds(secs); }
            catch (ArgumentOutOfRangeException e) { throw new ImageFormatException($"'{display}': mtime out of range", e); }
        }
        var uname = Lookup(pax, "uname") ?? Field(block.Slice(265, 32)).ToArray();
        var gname = Lookup(pax, "gname") ?? Field(block.Slice(297, 32)).ToArray();
        long major = 0, minor = 0;
        if (type is LayerEntryType.CharacterDevice or LayerEntryType.BlockDevice)
        {
            major = Number(329, 8, "devmajor", offset);
            minor = Number(337, 8, "devminor", offset);
        }

        var xattrs = CollectXattrs(pax, display);
        var size = type == LayerEntryType.RegularFile ? EffectiveSize(headerSize, pax) : 0;
        return new LayerEntry
        {
            Path = path,
            Type = type,
            Mode = mode,
            Uid = uid,
            Gid = gid,
            UserName = Intern(uname),
            GroupName = Intern(gname),
            Size = size,
            ModificationTime = mtime,
            LinkTarget = link,
            DevMajor = major,
            DevMinor = minor,
            Xattrs = xattrs,
        };
    }

    /// <summary>Owner names repeat on every entry; share one string per name to keep indexes small.</summary>
    private string Intern(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty) return "";
        var text = Encoding.UTF8.GetString(bytes);
        if (_names.TryGetValue(text, out var shared)) return shared;
        if (_names.Count < 1024) _names[text] = text;
        return text;
    }

    private IReadOnlyDictionary<string, byte[]> CollectXattrs(Dictionary<string, byte[]>? pax, string display)
    {
        List<KeyValuePair<string, byte[]>>? list = null;
        IEnumerable<KeyValuePair<string, byte[]>> all = pax is null ? _global : _global.Where(g => !pax.ContainsKey(g.Key)).Concat(pax);
        foreach (var (key, value) in all)
        {
            if (key.StartsWith("SCHILY.xattr.", StringComparison.Ordinal))
            {
                (list ??= []).Add(new(key["SCHILY.xattr.".Length..], value));
            }
            else if (key.StartsWith("LIBARCHIVE.xattr.", StringComparison.Ordinal))
            {
                var name = Uri.UnescapeDataString(key["LIBARCHIVE.xattr.".Length..]);
                var text = Encoding.ASCII.GetString(value);
                text = text.PadRight((text.Length + 3) / 4 * 4, '=');
                try { (list ??= []).Add(new(name, Convert.FromBase64String(text))); }
                catch (FormatException e) { throw new ImageFormatException($"'{display}': corrupt LIBARCHIVE xattr '{name}'", e); }
            }
        }
        if (list is null) return System.Collections.Frozen.FrozenDictionary<string, byte[]>.Empty;
        // A later record for the same name wins (entry PAX over global PAX).
        var map = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var (k, v) in list) map[k] = v;
        return LayerEntry.CreateXattrs(map);
    }

    private long? PaxNumber(Dictionary<string, byte[]>? pax, string key)
    {
        var v = Lookup(pax, key);
        if (v is null) return null;
        if (!TarNumbers.TryParseDecimal(v, out var n))
            throw new ImageFormatException($"corrupt PAX {key} '{Encoding.ASCII.GetString(v)}'");
        return n;
    }

    private static void ParsePax(byte[] data, Dictionary<string, byte[]> into, long offset)
    {
        var span = data.AsSpan();
        var pos = 0;
        while (pos < span.Length)
        {
            if (span[pos] == 0) break; // padding some writers leave
            var sp = span[pos..].IndexOf((byte)' ');
            if (sp <= 0 || !TarNumbers.TryParseDecimal(span.Slice(pos, sp), out var len) || len <= sp + 1 || pos + len > span.Length)
                throw new ImageFormatException($"corrupt PAX header at offset {offset}");
            var record = span.Slice(pos + sp + 1, (int)len - sp - 1);
            if (record[^1] != (byte)'\n') throw new ImageFormatException($"corrupt PAX record at offset {offset}");
            record = record[..^1];
            var eq = record.IndexOf((byte)'=');
            if (eq <= 0) throw new ImageFormatException($"corrupt PAX record at offset {offset}");
            var key = Encoding.UTF8.GetString(record[..eq]);
            into[key] = record[(eq + 1)..].ToArray();
            pos += (int)len;
        }
    }

    private void CheckChecksum(long offset)
    {
        var block = _block.AsSpan();
        if (!TarNumbers.TryParse(block.Slice(148, 8), out var stored))
            throw new ImageFormatException(offset == 0 ? NotATarMessage() : $"corrupt tar header at offset {offset}: unreadable checksum");
        long unsigned = 0, signed = 0;
        for (var i = 0; i < BlockSize; i++)
        {
            var b = i is >= 148 and < 156 ? (byte)' ' : block[i];
            unsigned += b;
            signed += (sbyte)b;
        }
        if (stored != unsigned && stored != signed)
            throw new ImageFormatException(offset == 0 ? NotATarMessage() : $"corrupt tar header at offset {offset}: checksum mismatch");
    }

    private string NotATarMessage()
    {
        if (_block[0] == 0x1f && _block[1] == 0x8b) return "not a tar: the layer is gzip-compressed (decompress it first)";
        if (_block[0] == 0x28 && _block[1] == 0xb5 && _block[2] == 0x2f && _block[3] == 0xfd) return "not a tar: the layer is zstd-compressed (decompress it first)";
        return "not a tar: the first header's checksum does not match";
    }

    private long Number(int start, int length, string what, long offset)
    {
        if (!TarNumbers.TryParse(_block.AsSpan(start, length), out var v))
            throw new ImageFormatException($"corrupt tar header at offset {offset}: bad {what} field");
        return v;
    }

    private static ReadOnlySpan<byte> Field(ReadOnlySpan<byte> field)
    {
        var nul = field.IndexOf((byte)0);
        return nul < 0 ? field : field[..nul];
    }

    private static byte[] TrimNul(byte[] data)
    {
        var nul = Array.IndexOf(data, (byte)0);
        return nul < 0 ? data : data[..nul];
    }

    private static string Printable(char c) => c is >= ' ' and < (char)127 ? c.ToString() : $"\\x{(int)c:x2}";

    private static long Pad(long size) => (BlockSize - (size % BlockSize)) % BlockSize;

    private async ValueTask<byte[]> ReadMetaAsync(long size, long offset, CancellationToken ct)
    {
        if (size > MaxMetaSize) throw new ImageFormatException($"extended header at offset {offset} is too large ({size} bytes)");
        var data = new byte[size];
        var n = await ReadFullyAsync(data, ct).ConfigureAwait(false);
        if (n < size) throw new ImageFormatException($"truncated tar: extended header at offset {offset} is cut short");
        await SkipAsync(Pad(size), ct).ConfigureAwait(false);
        return data;
    }

    private async ValueTask<int> ReadFullyAsync(Memory<byte> buffer, CancellationToken ct)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            var n = await _stream.ReadAsync(buffer[total..], ct).ConfigureAwait(false);
            if (n == 0) break;
            total += n;
        }
        _position += total;
        return total;
    }

    private async ValueTask SkipAsync(long count, CancellationToken ct)
    {
        if (count <= 0) return;
        if (_stream.CanSeek)
        {
            var target = _stream.Position + count;
            if (target > _stream.Length)
                throw new ImageFormatException($"truncated tar: data ends before offset {_position + count}");
            _stream.Position = target;
            _position += count;
            return;
        }
        var buffer = ArrayPool<byte>.Shared.Rent(81920);
        try
        {
            while (count > 0)
            {
                var n = await _stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, count)), ct).ConfigureAwait(false);
                if (n == 0) throw new ImageFormatException($"truncated tar: data ends at offset {_position}");
                count -= n;
                _position += n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async ValueTask DrainAsync(CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(81920);
        try
        {
            int n;
            while ((n = await _stream.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0) _position += n;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private int CheckRead(int n, int wanted, LayerEntry entry)
    {
        if (n == 0 && wanted > 0)
            throw new ImageFormatException($"truncated tar: content of '{entry.Name}' ends early at offset {_position}");
        _remaining -= n;
        _position += n;
        return n;
    }

    public void Dispose()
    {
        if (!_leaveOpen) _inner.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        if (!_leaveOpen) await _inner.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Reads the current entry's data straight from the tar, no further than its size.</summary>
    private sealed class ContentStream(LayerTarReader reader, LayerEntry entry) : Stream
    {
        private LayerTarReader? _reader = reader;

        public void Detach() => _reader = null;

        private LayerTarReader Reader => _reader ?? throw new ObjectDisposedException($"content of '{entry.Name}' (the reader has moved on)");

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => entry.Size;

        public override long Position
        {
            get => entry.Size - Reader._remaining;
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var r = Reader;
            var wanted = (int)Math.Min(buffer.Length, r._remaining);
            if (wanted == 0) return 0;
            var n = r._stream.Read(buffer[..wanted]);
            return r.CheckRead(n, wanted, entry);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var r = Reader;
            var wanted = (int)Math.Min(buffer.Length, r._remaining);
            if (wanted == 0) return 0;
            var n = await r._stream.ReadAsync(buffer[..wanted], cancellationToken).ConfigureAwait(false);
            return r.CheckRead(n, wanted, entry);
        }

        public override void Flush() { }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
