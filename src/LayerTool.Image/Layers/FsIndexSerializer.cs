using System.Security.Cryptography;
using System.Text;

namespace LayerTool.Image.Layers;

/// <summary>
/// The compact on-disk form of an <see cref="FsIndex"/> (for the base-index cache keyed by image ID):
/// a magic line, then one binary record per path in walk order, an end mark and the SHA-256 of all
/// that came before, so a damaged cache file is detected rather than trusted. Written and read as a
/// stream, one record at a time.
/// </summary>
public static class FsIndexSerializer
{
    private static ReadOnlySpan<byte> Magic => "LTFSIDX1\n"u8;

    /// <summary>Writes <paramref name="index"/> to <paramref name="output"/>.</summary>
    public static void Write(FsIndex index, Stream output)
    {
        ArgumentNullException.ThrowIfNull(index);
        ArgumentNullException.ThrowIfNull(output);
        using var hashing = new HashingStream(output, leaveOpen: true);
        using (var buffered = new BufferedStream(hashing, 65536))
        using (var w = new BinaryWriter(buffered, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Magic);
            foreach (var e in index.Entries)
            {
                var entry = e.Entry;
                w.Write((byte)1);
                WriteBytes(w, entry.Path.Bytes);
                w.Write((byte)entry.Type);
                w.Write7BitEncodedInt(entry.Mode);
                w.Write7BitEncodedInt64(entry.Uid);
                w.Write7BitEncodedInt64(entry.Gid);
                w.Write(entry.UserName);
                w.Write(entry.GroupName);
                w.Write7BitEncodedInt64(entry.Size);
                w.Write(entry.ModificationTime.UtcTicks);
                WriteBytes(w, entry.LinkTarget);
                w.Write7BitEncodedInt64(entry.DevMajor);
                w.Write7BitEncodedInt64(entry.DevMinor);
                w.Write7BitEncodedInt(entry.Xattrs.Count);
                foreach (var (k, v) in entry.Xattrs.OrderBy(x => x.Key, StringComparer.Ordinal))
                {
                    w.Write(k);
                    WriteBytes(w, v);
                }
                if (entry.Type == LayerEntryType.RegularFile) w.Write(e.ContentHash!);
                WriteBytes(w, e.HardLinkOf is null ? [] : e.HardLinkOf.Bytes);
            }
            w.Write((byte)0);
        }
        output.Write(hashing.GetHash());
        output.Flush();
    }

    /// <summary>Reads an index written by <see cref="Write"/>.</summary>
    /// <exception cref="ImageFormatException">The data is not an index, or is damaged.</exception>
    public static FsIndex Read(Stream input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var builder = new FsIndexBuilder();
        using var buffered = new BufferedStream(input, 65536);
        try
        {
            // Hash exactly the bytes the records use; the stored checksum follows the end mark.
            var r = new BinaryReader(buffered, Encoding.UTF8, leaveOpen: true);
            var magic = r.ReadBytes(Magic.Length);
            if (!magic.AsSpan().SequenceEqual(Magic)) throw new ImageFormatException("not a LayerTool filesystem index");
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            sha.AppendData(magic);
            var counting = new RecordHasher(r, sha);
            var names = new Dictionary<string, string>(StringComparer.Ordinal);
            while (counting.ReadByte() == 1)
            {
                var path = LayerPath.FromBytes(counting.ReadBytes());
                var type = (LayerEntryType)counting.ReadByte();
                var mode = (int)counting.Read7Bit();
                var uid = counting.Read7Bit();
                var gid = counting.Read7Bit();
                // Owner names repeat on nearly every path: one shared string each (~60 bytes a path saved).
                var uname = Intern(names, Encoding.UTF8.GetString(counting.ReadBytes()));
                var gname = Intern(names, Encoding.UTF8.GetString(counting.ReadBytes()));
                var size = counting.Read7Bit();
                var ticks = BitConverter.ToInt64(counting.ReadFixed(8));
                var link = counting.ReadBytes();
                var major = counting.Read7Bit();
                var minor = counting.Read7Bit();
                var xcount = (int)counting.Read7Bit();
                var xattrs = new List<KeyValuePair<string, byte[]>>(xcount);
                for (var i = 0; i < xcount; i++)
                    xattrs.Add(new(Encoding.UTF8.GetString(counting.ReadBytes()), counting.ReadBytes()));
                var hash = type == LayerEntryType.RegularFile ? counting.ReadFixed(32) : null;
                var first = counting.ReadBytes();
                var entry = new LayerEntry
                {
                    Path = path,
                    Type = type,
                    Mode = mode,
                    Uid = uid,
                    Gid = gid,
                    UserName = uname,
                    GroupName = gname,
                    Size = size,
                    ModificationTime = new DateTimeOffset(ticks, TimeSpan.Zero),
                    LinkTarget = link,
                    DevMajor = major,
                    DevMinor = minor,
                    Xattrs = LayerEntry.CreateXattrs(xattrs),
                };
                if (first.Length > 0) entry = entry with { Type = LayerEntryType.HardLink, LinkTarget = first };
                builder.Put(entry, hash);
            }
            counting.Flush();
            var expected = sha.GetHashAndReset();
            var stored = r.ReadBytes(32);
            if (!stored.AsSpan().SequenceEqual(expected)) throw new ImageFormatException("the filesystem index is damaged (checksum mismatch)");
        }
        catch (EndOfStreamException e)
        {
            throw new ImageFormatException("the filesystem index is truncated", e);
        }
        return builder.Build();
    }

    private static string Intern(Dictionary<string, string> pool, string name)
    {
        if (pool.TryGetValue(name, out var shared)) return shared;
        pool[name] = name;
        return name;
    }

    private static void WriteBytes(BinaryWriter w, ReadOnlySpan<byte> bytes)
    {
        w.Write7BitEncodedInt(bytes.Length);
        w.Write(bytes);
    }

    /// <summary>Reads record fields and feeds exactly their bytes to the checksum (in blocks, not field by field).</summary>
    private sealed class RecordHasher(BinaryReader reader, IncrementalHash sha)
    {
        private readonly byte[] _pending = new byte[1 << 16];
        private int _count;

        private void Append(ReadOnlySpan<byte> bytes)
        {
            if (_count + bytes.Length > _pending.Length) Flush();
            if (bytes.Length > _pending.Length)
            {
                sha.AppendData(bytes);
                return;
            }
            bytes.CopyTo(_pending.AsSpan(_count));
            _count += bytes.Length;
        }

        public void Flush()
        {
            sha.AppendData(_pending, 0, _count);
            _count = 0;
        }

        public byte ReadByte()
        {
            var b = reader.ReadByte();
            Append([b]);
            return b;
        }

        public long Read7Bit()
        {
            long result = 0;
            for (var shift = 0; shift < 70; shift += 7)
            {
                var b = ReadByte();
                result |= (long)(b & 0x7F) << shift;
                if ((b & 0x80) == 0) return result;
            }
            throw new ImageFormatException("the filesystem index is damaged (bad number)");
        }

        public byte[] ReadFixed(int n)
        {
            var bytes = reader.ReadBytes(n);
            if (bytes.Length < n) throw new EndOfStreamException();
            Append(bytes);
            return bytes;
        }

        public byte[] ReadBytes()
        {
            var n = Read7Bit();
            if (n is < 0 or > 1 << 24) throw new ImageFormatException("the filesystem index is damaged (bad length)");
            return ReadFixed((int)n);
        }
    }
}
