namespace LayerTool.Image.Layers;

/// <summary>A node of the in-memory filesystem tree behind <see cref="FsIndex"/>.</summary>
internal sealed class FsNode
{
    public FsNode(LayerEntry entry, byte[]? hash, long inode, int serial)
    {
        Entry = entry;
        Hash = hash;
        Inode = inode;
        Serial = serial;
        if (entry.IsDirectory) Children = new SortedDictionary<byte[], FsNode>(NameComparer.Instance);
    }

    public LayerEntry Entry { get; set; }

    public byte[]? Hash { get; }

    public long Inode { get; }

    /// <summary>The layer (1-based) that created or last updated this node; 0 for a loaded index.</summary>
    public int Serial { get; set; }

    /// <summary>Children by name (directories only), in byte order.</summary>
    public SortedDictionary<byte[], FsNode>? Children { get; }

    public FsNode Clone()
    {
        var n = new FsNode(Entry, Hash, Inode, Serial);
        if (Children is not null)
        {
            foreach (var (k, v) in Children) n.Children!.Add(k, v.Clone());
        }
        return n;
    }

    /// <summary>Unsigned byte order of single names.</summary>
    internal sealed class NameComparer : IComparer<byte[]>
    {
        public static NameComparer Instance { get; } = new();

        public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
    }
}
