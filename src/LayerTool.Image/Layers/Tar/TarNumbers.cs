using System.Globalization;

namespace LayerTool.Image.Layers.Tar;

/// <summary>Numeric header fields: octal text or GNU base-256, and PAX decimals.</summary>
internal static class TarNumbers
{
    public static bool TryParse(ReadOnlySpan<byte> field, out long value)
    {
        value = 0;
        if (field.IsEmpty) return true;
        if ((field[0] & 0x80) != 0)
        {
            // Base-256 (GNU): big-endian two's complement; the first byte's top bit is the marker.
            var negative = (field[0] & 0x40) != 0;
            long v = negative ? -1 : 0;
            for (var i = 0; i < field.Length; i++)
            {
                var b = field[i];
                if (i == 0) b = (byte)(negative ? b | 0x80 : b & 0x7F);
                if (i > 0 && !negative && (v >> 55) != 0) return false;
                v = (v << 8) | b;
            }
            value = v;
            return true;
        }
        var s = 0;
        while (s < field.Length && (field[s] == (byte)' ' || field[s] == 0)) s++;
        var e = s;
        while (e < field.Length && field[e] != (byte)' ' && field[e] != 0) e++;
        for (var i = e; i < field.Length; i++)
        {
            if (field[i] != (byte)' ' && field[i] != 0) return false;
        }
        long r = 0;
        for (var i = s; i < e; i++)
        {
            var d = field[i] - (byte)'0';
            if (d is < 0 or > 7) return false;
            if (r > (long.MaxValue >> 3)) return false;
            r = (r << 3) | (uint)d;
        }
        value = r;
        return true;
    }

    /// <summary>Writes <paramref name="value"/> as zero-padded octal with a NUL terminator, if it fits.</summary>
    public static bool TryWriteOctal(Span<byte> field, long value)
    {
        if (value < 0) return false;
        var digits = field.Length - 1;
        if (digits < 22 && value >= 1L << (3 * digits)) return false;
        for (var i = digits - 1; i >= 0; i--)
        {
            field[i] = (byte)('0' + (value & 7));
            value >>= 3;
        }
        field[digits] = 0;
        return true;
    }

    /// <summary>Writes <paramref name="value"/> in base-256 (GNU extension) over the whole field.</summary>
    public static void WriteBase256(Span<byte> field, long value)
    {
        for (var i = field.Length - 1; i >= 0; i--)
        {
            field[i] = (byte)value;
            value >>= 8;
        }
        field[0] |= 0x80;
    }

    public static bool TryParseDecimal(ReadOnlySpan<byte> text, out long value) =>
        long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value);

    /// <summary>Parses a PAX time (<c>seconds[.fraction]</c>, possibly negative) into a UTC time.</summary>
    public static bool TryParsePaxTime(ReadOnlySpan<byte> text, out DateTimeOffset time)
    {
        time = default;
        var dot = text.IndexOf((byte)'.');
        var whole = dot < 0 ? text : text[..dot];
        var negative = !whole.IsEmpty && whole[0] == (byte)'-';
        if (!TryParseDecimal(whole, out var seconds)) return false;
        long ticks = 0;
        if (dot >= 0)
        {
            var frac = text[(dot + 1)..];
            long scale = TimeSpan.TicksPerSecond / 10;
            foreach (var c in frac)
            {
                var d = c - (byte)'0';
                if (d is < 0 or > 9) return false;
                ticks += d * scale;
                scale /= 10;
            }
        }
        try
        {
            var t = DateTimeOffset.UnixEpoch.AddSeconds(seconds);
            time = negative ? t.AddTicks(-ticks) : t.AddTicks(ticks);
            return true;
        }
        catch (ArgumentOutOfRangeException)
        {
            return false;
        }
    }

    public static byte[] FormatDecimal(long value) =>
        System.Text.Encoding.ASCII.GetBytes(value.ToString(CultureInfo.InvariantCulture));
}
