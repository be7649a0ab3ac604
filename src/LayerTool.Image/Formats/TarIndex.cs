using System.Buffers.Text;
using System.Globalization;
using System.Text;

namespace LayerTool.Image.Formats;

/// <summary>One member of an archive tar: where its data starts and how long it is.</summary>
internal sealed record TarMember(string Name, char Type, long DataOffset, long Size, string? LinkName)
{
    public bool IsRegular => Type is '0' or '\0' or '7';

    public bool IsSymlink => Type == '2';

    public bool IsHardLink => Type == '1';

    public bool IsDirectory => Type == '5';
}

/// <summary>
/// A first pass over a tar archive (ustar, GNU and PAX headers) that records where every member's data
/// lies, so members can later be reopened and streamed without extracting anything. Checks header
/// checksums and that every member's data lies inside the file, so corruption and truncation show here.
/// This reads the container archive (<c>docker save</c>, OCI layout tar), not layer contents.
/// </summary>
internal static class TarIndex
{
    private const int Block = 512;

    public static IReadOnlyDictionary<string, TarMember> Read(Stream stream, string archive)
    {
        var length = stream.Length;
        var members = new Dictionary<string, TarMember>(StringComparer.Ordinal);
        var header = new byte[Block];
        long position = 0;
        string? longName = null;
        string? longLink = null;
        Dictionary<string, string>? pax = null;
        stream.Position = 0;
        while (true)
        {
            var n = stream.ReadAtLeast(header, Block, throwOnEndOfStream: false);
            if (n == 0 && position == 0)
            {
                throw new ImageFormatException($"{archive}: the file is empty, not a tar archive.");
            }

            if (n < Block)
            {
                throw new ImageFormatException($"{archive}: truncated tar archive (ends inside the header at offset {position}, or has no end-of-archive marker).");
            }

            if (header.AsSpan().IndexOfAnyExcept((byte)0) < 0)
            {
                break;
            }

            if (!ChecksumMatches(header))
            {
                throw new ImageFormatException(position == 0
                    ? $"{archive}: not a tar archive (no valid tar header at the start)."
                    : $"{archive}: corrupt tar header at offset {position} (checksum mismatch).");
            }

            var type = (char)header[156];
            var size = ParseNumber(header.AsSpan(124, 12), archive, position);
            var dataOffset = position + Block;
            if (size < 0 || dataOffset + size > length)
            {
                throw new ImageFormatException($"{archive}: truncated tar archive: the member at offset {position} needs {size} bytes, the file ends first.");
            }

            var next = dataOffset + ((size + Block - 1) / Block * Block);
            switch (type)
            {
                case 'x':
                    pax = ReadPax(stream, dataOffset, size, archive);
                    break;
                case 'g':
                    break;
                case 'L':
                    longName = ReadString(stream, dataOffset, size);
                    break;
                case 'K':
                    longLink = ReadString(stream, dataOffset, size);
                    break;
                default:
                    var name = longName ?? HeaderName(header);
                    var link = longLink ?? Field(header.AsSpan(157, 100));
                    if (pax is not null)
                    {
                        name = pax.GetValueOrDefault("path", name);
                        link = pax.GetValueOrDefault("linkpath", link);
                        if (pax.TryGetValue("size", out var paxSize) && long.TryParse(paxSize, NumberStyles.None, CultureInfo.InvariantCulture, out var s))
                        {
                            size = s;
                            next = dataOffset + ((size + Block - 1) / Block * Block);
                            if (dataOffset + size > length)
                            {
                                throw new ImageFormatException($"{archive}: truncated tar archive: the member '{name}' needs {size} bytes, the file ends first.");
                            }
                        }
                    }

                    var clean = Clean(name);
                    if (clean.Length > 0)
                    {
                        members[clean] = new TarMember(clean, type, dataOffset, size, string.IsNullOrEmpty(link) ? null : link);
                    }

                    longName = null;
                    longLink = null;
                    pax = null;
                    break;
            }

            position = next;
            stream.Position = position;
        }

        return members;
    }

    /// <summary>A member name made relative and clean: no leading <c>./</c> or <c>/</c>, no trailing <c>/</c>.</summary>
    public static string Clean(string name)
    {
        var parts = new List<string>();
        foreach (var part in name.Split('/'))
        {
            if (part.Length == 0 || part == ".")
            {
                continue;
            }

            if (part == "..")
            {
                if (parts.Count > 0)
                {
                    parts.RemoveAt(parts.Count - 1);
                }

                continue;
            }

            parts.Add(part);
        }

        return string.Join('/', parts);
    }

    private static bool ChecksumMatches(ReadOnlySpan<byte> header)
    {
        long unsigned = 0;
        long signed = 0;
        for (var i = 0; i < Block; i++)
        {
            var b = i is >= 148 and < 156 ? (byte)' ' : header[i];
            unsigned += b;
            signed += (sbyte)b;
        }

        var field = Field(header.Slice(148, 8)).Trim();
        return long.TryParse(field, NumberStyles.None, CultureInfo.InvariantCulture, out _)
            && (Octal(field) == unsigned || Octal(field) == signed);
    }

    private static long Octal(string text)
    {
        long value = 0;
        foreach (var c in text)
        {
            if (c is < '0' or > '7')
            {
                return -1;
            }

            value = (value * 8) + (c - '0');
        }

        return value;
    }

    private static long ParseNumber(ReadOnlySpan<byte> field, string archive, long position)
    {
        if ((field[0] & 0x80) != 0)
        {
            // GNU base-256: big-endian two's complement in the remaining bits.
            long value = field[0] & 0x7f;
            for (var i = 1; i < field.Length; i++)
            {
                value = (value << 8) | field[i];
            }

            return value;
        }

        var text = Field(field).Trim();
        if (text.Length == 0)
        {
            return 0;
        }

        var number = Octal(text);
        return number >= 0 ? number : throw new ImageFormatException($"{archive}: corrupt tar header at offset {position} (bad size field).");
    }

    private static string HeaderName(ReadOnlySpan<byte> header)
    {
        var name = Field(header[..100]);
        var magic = header.Slice(257, 6);
        if (magic.SequenceEqual("ustar\0"u8))
        {
            var prefix = Field(header.Slice(345, 155));
            if (prefix.Length > 0)
            {
                name = prefix + "/" + name;
            }
        }

        return name;
    }

    private static string Field(ReadOnlySpan<byte> field)
    {
        var end = field.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end >= 0 ? field[..end] : field);
    }

    private static string ReadString(Stream stream, long offset, long size)
    {
        if (size > 1 << 20)
        {
            throw new ImageFormatException("tar: a long name record over 1 MiB.");
        }

        var buffer = new byte[size];
        stream.Position = offset;
        stream.ReadExactly(buffer);
        return Field(buffer);
    }

    private static Dictionary<string, string> ReadPax(Stream stream, long offset, long size, string archive)
    {
        if (size > 1 << 20)
        {
            throw new ImageFormatException($"{archive}: a PAX header over 1 MiB.");
        }

        var buffer = new byte[size];
        stream.Position = offset;
        stream.ReadExactly(buffer);
        var records = new Dictionary<string, string>(StringComparer.Ordinal);
        var rest = buffer.AsSpan();
        while (rest.Length > 0)
        {
            var space = rest.IndexOf((byte)' ');
            if (space <= 0 || !Utf8Parser.TryParse(rest[..space], out int recordLength, out _) || recordLength <= space || recordLength > rest.Length)
            {
                throw new ImageFormatException($"{archive}: corrupt PAX header at offset {offset}.");
            }

            var record = rest[(space + 1)..recordLength];
            var equals = record.IndexOf((byte)'=');
            if (equals > 0 && record[^1] == (byte)'\n')
            {
                records[Encoding.UTF8.GetString(record[..equals])] = Encoding.UTF8.GetString(record[(equals + 1)..^1]);
            }

            rest = rest[recordLength..];
        }

        return records;
    }
}
