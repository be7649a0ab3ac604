using System.Diagnostics.CodeAnalysis;

namespace LayerTool.Image.Layers.Index;

/// <summary>A node of the in-memory filesystem tree behind <see cref="FsIndex"/>.</summary>
internal sealed class FsNode
{
    public FsNode(LayerEntry entry, byte[]? hash, long inode, int serial)
    {
        Entry = entry;
        Hash = hash;
        Inode = inode;
        Serial = serial;
        if (entry.IsDirectory) Children = new ChildList();
    }

    public LayerEntry Entry { get; set; }

    public byte[]? Hash { get; }

    public long Inode { get; }

    /// <summary>The layer (1-based) that created or last updated this node; 0 for a loaded index.</summary>
    public int Serial { get; set; }

    /// <summary>Where the content comes from, for an index whose records carry it (see <see cref="StoredRecord.Origin"/>); -1 otherwise.</summary>
    public long Origin { get; set; } = -1;

    /// <summary>Children (directories only), in byte order of their names.</summary>
    public ChildList? Children { get; }

    /// <summary>
    /// A copy of this node whose child list holds the same child nodes (not copies of them): the builder's
    /// copy-on-write step, so an index built on top of another shares every untouched subtree with it.
    /// </summary>
    public FsNode ShallowClone()
    {
        var n = new FsNode(Entry, Hash, Inode, Serial) { Origin = Origin };
        if (Children is not null) n.Children!.CopyFrom(Children);
        return n;
    }

    /// <summary>
    /// A directory's children as one array sorted by name (unsigned bytes), found by binary search. The name
    /// is the last component of each child's own path, so no key is stored: about 8 bytes per child where a
    /// sorted dictionary cost a tree node and a copy of the name (~100 bytes; see FsIndexMemoryTests). Walk
    /// order feeds children in name order, so inserts are appends.
    /// </summary>
    internal sealed class ChildList
    {
        private FsNode[] _items = [];
        private int _count;

        public int Count => _count;

        /// <summary>The children in name order (do not change the list while enumerating).</summary>
        public IEnumerable<FsNode> Values
        {
            get
            {
                for (var i = 0; i < _count; i++) yield return _items[i];
            }
        }

        public bool TryGetValue(ReadOnlySpan<byte> name, [NotNullWhen(true)] out FsNode? node)
        {
            var i = Search(name);
            node = i >= 0 ? _items[i] : null;
            return node is not null;
        }

        /// <summary>Adds <paramref name="node"/>, replacing a child of the same name.</summary>
        public void Set(FsNode node)
        {
            var name = node.Entry.Path.Name;
            if (_count == 0 || _items[_count - 1].Entry.Path.Name.SequenceCompareTo(name) < 0)
            {
                Insert(_count, node);
                return;
            }
            var i = Search(name);
            if (i >= 0) _items[i] = node;
            else Insert(~i, node);
        }

        public bool Remove(ReadOnlySpan<byte> name)
        {
            var i = Search(name);
            if (i < 0) return false;
            Array.Copy(_items, i + 1, _items, i, _count - i - 1);
            _items[--_count] = null!;
            return true;
        }

        /// <summary>Makes this (empty) list hold the same nodes as <paramref name="other"/>.</summary>
        public void CopyFrom(ChildList other)
        {
            _items = other._count == 0 ? [] : other._items.AsSpan(0, other._count).ToArray();
            _count = other._count;
        }

        /// <summary>A copy of the children, for changing the list while going through them.</summary>
        public FsNode[] ToArray() => _items.AsSpan(0, _count).ToArray();

        private void Insert(int at, FsNode node)
        {
            if (_count == _items.Length) Array.Resize(ref _items, _count == 0 ? 4 : _count * 2);
            Array.Copy(_items, at, _items, at + 1, _count - at);
            _items[at] = node;
            _count++;
        }

        private int Search(ReadOnlySpan<byte> name)
        {
            int lo = 0, hi = _count - 1;
            while (lo <= hi)
            {
                var mid = lo + ((hi - lo) >> 1);
                var c = _items[mid].Entry.Path.Name.SequenceCompareTo(name);
                if (c == 0) return mid;
                if (c < 0) lo = mid + 1;
                else hi = mid - 1;
            }
            return ~lo;
        }
    }
}
