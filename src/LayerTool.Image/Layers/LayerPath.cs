using System.Text;
using System.Text.Unicode;
using LayerTool.Image.Layers.Index;

namespace LayerTool.Image.Layers;

/// <summary>
/// A cleaned path inside a layer or image filesystem, kept as its exact bytes (Linux names need not be
/// UTF-8). Clean means: relative to the root, no empty, <c>.</c> or <c>..</c> components, no trailing
/// slash; the root itself is the empty path. Ordering (<see cref="CompareTo"/>) is docker's export walk
/// order: component by component, bytes compared unsigned, so a directory is immediately followed by
/// all its descendants (<c>a</c>, <c>a/b</c>, <c>a.b</c>).
/// A parent or ancestor shares its descendant's bytes (it is a prefix of them) instead of copying them, so the
/// directory chain of a deep path costs memory linear in the path's length, not quadratic.
/// </summary>
public sealed class LayerPath : IEquatable<LayerPath>, IComparable<LayerPath>
{
    private const byte Slash = (byte)'/';
    private readonly byte[] _buffer;
    private readonly int _length;
    private int _hash;

    private LayerPath(byte[] bytes)
        : this(bytes, bytes.Length)
    {
    }

    /// <summary>The first <paramref name="length"/> bytes of <paramref name="buffer"/> (shared, never changed).</summary>
    private LayerPath(byte[] buffer, int length)
    {
        _buffer = buffer;
        _length = length;
    }

    /// <summary>
    /// The longest path LayerTool reads from a layer, in bytes. Linux itself refuses paths over 4,096 bytes
    /// (PATH_MAX) in one call, so no engine can apply a longer one; this generous limit only stops a hostile
    /// layer from making every tool that materialises parent directories quadratic.
    /// </summary>
    public const int MaxBytes = 64 * 1024;

    /// <summary>The most components a path read from a layer may have (see <see cref="MaxBytes"/>).</summary>
    public const int MaxComponents = 4096;

    /// <summary>Why <paramref name="raw"/> (a name or link target as written in a tar) is past the limits, or null.</summary>
    public static string? CheckLimits(ReadOnlySpan<byte> raw)
    {
        if (raw.Length > MaxBytes)
            return $"the path is {raw.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)} bytes long, over LayerTool's limit of {MaxBytes.ToString(System.Globalization.CultureInfo.InvariantCulture)} bytes";
        var components = 0;
        foreach (var range in raw.Split(Slash))
        {
            var part = raw[range];
            if (part.Length > 0 && !(part.Length == 1 && part[0] == (byte)'.')) components++;
        }
        if (components > MaxComponents)
            return $"the path has {components.ToString(System.Globalization.CultureInfo.InvariantCulture)} components, over LayerTool's limit of {MaxComponents.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
        return null;
    }

    /// <summary>At most the first <paramref name="max"/> bytes of a name as text, with an ellipsis when cut (for messages about long names).</summary>
    public static string Abbreviate(ReadOnlySpan<byte> raw, int max = 120) =>
        raw.Length <= max ? Display(raw) : Display(raw[..max]) + "…";

    /// <summary>The root directory (the empty path).</summary>
    public static LayerPath Root { get; } = new([]);

    /// <summary>The path's bytes, without leading or trailing slash.</summary>
    public ReadOnlySpan<byte> Bytes => _buffer.AsSpan(0, _length);

    public bool IsRoot => _length == 0;

    /// <summary>The number of components (0 for the root).</summary>
    public int Depth
    {
        get
        {
            if (IsRoot) return 0;
            return Bytes.Count(Slash) + 1;
        }
    }

    /// <summary>The last component.</summary>
    public ReadOnlySpan<byte> Name
    {
        get
        {
            var i = Bytes.LastIndexOf(Slash);
            return Bytes[(i + 1)..];
        }
    }

    /// <summary>The parent directory (the root's parent is the root).</summary>
    public LayerPath Parent
    {
        get
        {
            var i = Bytes.LastIndexOf(Slash);
            return i < 0 ? Root : new LayerPath(_buffer, i);
        }
    }

    /// <summary>Cleans a path as written in a tar header or given by a user, refusing names that
    /// are absolute or climb out of the root.</summary>
    /// <exception cref="ImageFormatException">The path is absolute, escapes the root or holds a NUL.</exception>
    public static LayerPath FromBytes(ReadOnlySpan<byte> raw)
    {
        if (!TryClean(raw, out var path, out var error))
            throw new ImageFormatException($"invalid path '{Display(raw)}': {error}");
        return path;
    }

    /// <summary>Cleans a path given as text (encoded as UTF-8).</summary>
    public static LayerPath Parse(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return FromBytes(Encoding.UTF8.GetBytes(path));
    }

    /// <summary>
    /// Cleans <paramref name="raw"/>: strips <c>./</c> and repeated or trailing slashes, folds
    /// <c>a/../b</c>. Refuses absolute names, <c>..</c> that climbs above the root, and NUL bytes.
    /// </summary>
    public static bool TryClean(ReadOnlySpan<byte> raw, out LayerPath path, out string? error)
    {
        path = Root;
        error = null;
        if (raw.IsEmpty) return true;
        if (raw[0] == Slash)
        {
            error = "absolute paths are not allowed in a layer";
            return false;
        }
        if (raw.Contains((byte)0))
        {
            error = "NUL byte in name";
            return false;
        }

        // Fast path: already clean (the common case for every entry of a well-formed tar).
        if (IsClean(raw))
        {
            path = new LayerPath(raw.ToArray());
            return true;
        }

        if (!TryJoinComponents(raw, confine: false, out var joined))
        {
            error = "'..' escapes the root";
            return false;
        }
        path = joined;
        return true;
    }

    /// <summary>
    /// Cleans <paramref name="raw"/> as a path resolved inside a chroot: a leading slash means the root, and
    /// <c>..</c> at the root stays at the root (what the kernel does for a process confined there).
    /// </summary>
    public static LayerPath Confine(ReadOnlySpan<byte> raw)
    {
        TryJoinComponents(raw, confine: true, out var path);
        if (path.Bytes.Contains((byte)0)) throw new ImageFormatException($"invalid path '{Abbreviate(path.Bytes)}': NUL byte in name");
        return path;
    }

    /// <summary>
    /// The components of <paramref name="raw"/> joined by single slashes, without empty and <c>.</c> components,
    /// <c>..</c> removing the component before it. A <c>..</c> at the root stays there when <paramref name="confine"/>
    /// (a chroot); otherwise it makes this return false.
    /// </summary>
    private static bool TryJoinComponents(ReadOnlySpan<byte> raw, bool confine, out LayerPath path)
    {
        path = Root;
        var parts = new List<(int Start, int Length)>();
        var i = 0;
        while (i <= raw.Length)
        {
            var next = raw[i..].IndexOf(Slash);
            var end = next < 0 ? raw.Length : i + next;
            var part = raw[i..end];
            if (part.Length == 2 && part[0] == (byte)'.' && part[1] == (byte)'.')
            {
                if (parts.Count > 0) parts.RemoveAt(parts.Count - 1);
                else if (!confine) return false;
            }
            else if (part.Length > 0 && !(part.Length == 1 && part[0] == (byte)'.'))
            {
                parts.Add((i, end - i));
            }
            if (next < 0) break;
            i = end + 1;
        }
        if (parts.Count == 0) return true;
        var bytes = new byte[parts.Sum(p => p.Length) + parts.Count - 1];
        var o = 0;
        foreach (var (start, len) in parts)
        {
            if (o > 0) bytes[o++] = Slash;
            raw.Slice(start, len).CopyTo(bytes.AsSpan(o));
            o += len;
        }
        path = new LayerPath(bytes);
        return true;
    }

    /// <summary>
    /// A path over the first <paramref name="length"/> bytes of <paramref name="buffer"/>, which its caller never
    /// changes (it may write after them): for decoders whose paths share one buffer along a directory chain
    /// (<see cref="PathDecoder"/>). The bytes must be clean (<see cref="IsCleanFrom"/>).
    /// </summary>
    internal static LayerPath OnSharedBuffer(byte[] buffer, int length) => length == 0 ? Root : new LayerPath(buffer, length);

    /// <summary>
    /// True when <paramref name="bytes"/> is a clean path (see the type's summary) if its part before
    /// <paramref name="from"/> is: only the components from the one holding <paramref name="from"/> on are checked.
    /// </summary>
    internal static bool IsCleanFrom(ReadOnlySpan<byte> bytes, int from)
    {
        if (bytes.IsEmpty) return true;
        var start = from <= 0 ? 0 : bytes[..Math.Min(from, bytes.Length)].LastIndexOf(Slash) + 1;
        var tail = bytes[start..];
        // An empty tail is a trailing slash; IsClean refuses an empty first component (a leading slash).
        return !tail.IsEmpty && !tail.Contains((byte)0) && IsClean(tail);
    }

    private static bool IsClean(ReadOnlySpan<byte> raw)
    {
        if (raw[^1] == Slash) return false;
        var start = 0;
        for (var i = 0; i <= raw.Length; i++)
        {
            if (i < raw.Length && raw[i] != Slash) continue;
            var len = i - start;
            if (len == 0) return false;
            if (raw[start] == (byte)'.' && (len == 1 || (len == 2 && raw[start + 1] == (byte)'.'))) return false;
            start = i + 1;
        }
        return true;
    }

    /// <summary>This path with one more component.</summary>
    public LayerPath Append(ReadOnlySpan<byte> name)
    {
        if (name.IsEmpty || name.Contains(Slash) || name.Contains((byte)0))
            throw new ArgumentException("a single non-empty component without '/' is expected", nameof(name));
        if (IsRoot) return new LayerPath(name.ToArray());
        var bytes = new byte[_length + 1 + name.Length];
        Bytes.CopyTo(bytes);
        bytes[_length] = Slash;
        name.CopyTo(bytes.AsSpan(_length + 1));
        return new LayerPath(bytes);
    }

    /// <summary>This path with one more component given as text.</summary>
    public LayerPath Append(string name) => Append(Encoding.UTF8.GetBytes(name));

    /// <summary>True when <paramref name="other"/> lies strictly below this path.</summary>
    public bool IsAncestorOf(LayerPath other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (IsRoot) return !other.IsRoot;
        return other._length > _length
            && other._buffer[_length] == Slash
            && other.Bytes.StartsWith(Bytes);
    }

    /// <summary>The ancestors below the root, root first (each shares this path's bytes).</summary>
    public IEnumerable<LayerPath> Ancestors()
    {
        for (var i = 0; i < _length; i++)
        {
            if (_buffer[i] == Slash) yield return new LayerPath(_buffer, i);
        }
    }

    /// <summary>Docker's walk order (see the type's summary).</summary>
    public int CompareTo(LayerPath? other)
    {
        if (other is null) return 1;
        return Compare(Bytes, other.Bytes);
    }

    /// <summary>Walk-order comparison of two clean paths given as bytes: '/' sorts before every other byte.</summary>
    public static int Compare(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        var n = Math.Min(a.Length, b.Length);
        var common = a[..n].CommonPrefixLength(b[..n]);
        if (common < n)
        {
            int x = a[common] == Slash ? -1 : a[common];
            int y = b[common] == Slash ? -1 : b[common];
            return x.CompareTo(y);
        }
        return a.Length.CompareTo(b.Length);
    }

    public bool Equals(LayerPath? other) =>
        other is not null && _length == other._length && (ReferenceEquals(_buffer, other._buffer) || Bytes.SequenceEqual(other.Bytes));

    public override bool Equals(object? obj) => obj is LayerPath p && Equals(p);

    public override int GetHashCode()
    {
        if (_hash == 0)
        {
            var h = new HashCode();
            h.AddBytes(Bytes);
            _hash = h.ToHashCode() | 1;
        }
        return _hash;
    }

    public static bool operator ==(LayerPath? a, LayerPath? b) => a is null ? b is null : a.Equals(b);

    public static bool operator !=(LayerPath? a, LayerPath? b) => !(a == b);

    public static bool operator <(LayerPath a, LayerPath b) => Compare(a, b) < 0;

    public static bool operator >(LayerPath a, LayerPath b) => Compare(a, b) > 0;

    public static bool operator <=(LayerPath a, LayerPath b) => Compare(a, b) <= 0;

    public static bool operator >=(LayerPath a, LayerPath b) => Compare(a, b) >= 0;

    private static int Compare(LayerPath? a, LayerPath? b) =>
        a is null ? (b is null ? 0 : -1) : a.CompareTo(b);

    /// <summary>The path as text: UTF-8 where valid, other bytes shown as <c>\xNN</c>. For display only.</summary>
    public override string ToString() => Display(Bytes);

    /// <summary>Renders bytes as text: valid UTF-8 as is, every other byte as <c>\xNN</c>.</summary>
    public static string Display(ReadOnlySpan<byte> bytes)
    {
        if (Utf8.IsValid(bytes)) return Encoding.UTF8.GetString(bytes);
        var sb = new StringBuilder(bytes.Length + 8);
        while (!bytes.IsEmpty)
        {
            var status = System.Text.Rune.DecodeFromUtf8(bytes, out var rune, out var consumed);
            if (status == System.Buffers.OperationStatus.Done)
            {
                sb.Append(rune.ToString());
            }
            else
            {
                consumed = 1;
                sb.Append("\\x").Append(bytes[0].ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
            }
            bytes = bytes[consumed..];
        }
        return sb.ToString();
    }
}
