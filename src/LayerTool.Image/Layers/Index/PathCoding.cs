namespace LayerTool.Image.Layers.Index;

/// <summary>
/// Front coding of the paths of an on-disk index or a written-entry log: each path is written as the length of
/// the prefix it shares with a reference path (the path before it, or one the reader has in memory), then the
/// rest. A file of paths in walk order then costs the bytes of its names, not of every full path again: a chain
/// of directories N deep is N names long on disk, where full paths would be the square of N (docs/hardening.md).
/// </summary>
internal sealed class PathEncoder
{
    private LayerPath _previous = LayerPath.Root;

    /// <summary>Writes <paramref name="path"/> against the path written before it, or against <paramref name="against"/>
    /// (a path a reader starting at this record has without reading what comes before it).</summary>
    public void Write(BinaryWriter w, LayerPath path, LayerPath? against = null)
    {
        var bytes = path.Bytes;
        var shared = bytes.CommonPrefixLength((against ?? _previous).Bytes);
        w.Write7BitEncodedInt(shared);
        FsIndexStore.WriteBytes(w, bytes[shared..]);
        _previous = path;
    }
}

/// <summary>
/// Reads what <see cref="PathEncoder"/> wrote. A path that extends the one before it is decoded into the same
/// buffer (after the bytes the earlier path uses, which never change), so the paths of a directory chain share
/// one buffer, as <see cref="LayerPath.Parent"/> does: holding a whole chain of N directories costs memory linear
/// in its length.
/// </summary>
internal sealed class PathDecoder
{
    private byte[] _buffer = [];
    private int _length;

    /// <summary>Reads a path written against the previous one, or against <paramref name="against"/> (the same
    /// reference the encoder was given).</summary>
    /// <exception cref="FormatException">The record is damaged.</exception>
    public LayerPath Read(BinaryReader r, LayerPath? against = null)
    {
        var shared = r.Read7BitEncodedInt();
        var rest = r.Read7BitEncodedInt();
        var reference = against is null ? _buffer.AsSpan(0, _length) : against.Bytes;
        if (shared < 0 || rest < 0 || rest > 1 << 24 || shared > reference.Length) throw new FormatException("bad path record");
        var tail = new byte[rest];
        r.BaseStream.ReadExactly(tail);
        var head = reference[..shared];
        var length = shared + rest;

        // How much of the last path starts the new one: all of it when the new path extends it (a child after its
        // directory, also when coded against an older reference).
        var last = _buffer.AsSpan(0, _length);
        var common = head.CommonPrefixLength(last);
        if (common == shared && _length > shared) common += tail.AsSpan().CommonPrefixLength(last[shared..]);
        if (common == _length && length >= _length)
        {
            // An extension: written after the last path's bytes, which never change (grown by doubling when full,
            // so a chain copies its bytes O(1) times on average).
            if (length > _buffer.Length)
            {
                var grown = new byte[Math.Max(length, _buffer.Length * 2)];
                last.CopyTo(grown);
                _buffer = grown;
            }
            var at = _length;
            if (shared > at)
            {
                head[at..].CopyTo(_buffer.AsSpan(at));
                at = shared;
            }
            tail.AsSpan(at - shared).CopyTo(_buffer.AsSpan(at));
        }
        else
        {
            var next = new byte[length];
            head.CopyTo(next);
            tail.CopyTo(next, shared);
            _buffer = next;
        }
        var from = Math.Min(_length, shared);
        _length = length;
        if (!LayerPath.IsCleanFrom(_buffer.AsSpan(0, length), from)) throw new FormatException("bad path");
        return LayerPath.OnSharedBuffer(_buffer, length);
    }
}
