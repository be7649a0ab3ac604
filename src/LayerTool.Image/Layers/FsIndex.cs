using System.Security.Cryptography;

namespace LayerTool.Image.Layers;

/// <summary>
/// The merged view of a filesystem (a stack of layers, or a flattened export): every path with its
/// metadata and, for regular files, the SHA-256 of the content (never the content). Immutable; build
/// one with <see cref="FsIndexBuilder"/> or the factory methods here. <see cref="Entries"/> walks it in
/// docker's export order. <see cref="FsIndexSerializer"/> stores it on disk for the base-index cache.
/// </summary>
public sealed class FsIndex
{
    private readonly FsNode _root;
    private readonly HashSet<long> _linkedInodes;
    private Dictionary<long, LayerPath>? _firstOfInode;

    internal FsIndex(FsNode root, int count, HashSet<long> linkedInodes)
    {
        _root = root;
        Count = count;
        _linkedInodes = linkedInodes;
    }

    /// <summary>An empty filesystem (<c>FROM scratch</c>).</summary>
    public static FsIndex Empty { get; } = new FsIndexBuilder().Build();

    /// <summary>Number of paths (the root is not counted).</summary>
    public int Count { get; }

    internal FsNode Root => _root;

    internal IReadOnlySet<long> LinkedInodes => _linkedInodes;

    /// <summary>Looks a path up.</summary>
    public FsIndexEntry? Find(LayerPath path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var node = FindNode(path);
        if (node is null || path.IsRoot) return null;
        LayerPath? first = null;
        if (_linkedInodes.Contains(node.Inode))
        {
            _firstOfInode ??= FirstPaths();
            first = _firstOfInode[node.Inode];
            if (first == path) first = null;
        }
        return new FsIndexEntry(node.Entry, node.Hash, first);
    }

    private Dictionary<long, LayerPath> FirstPaths()
    {
        var map = new Dictionary<long, LayerPath>();
        foreach (var (node, _) in Nodes())
        {
            if (_linkedInodes.Contains(node.Inode)) map.TryAdd(node.Inode, node.Entry.Path);
        }
        return map;
    }

    internal FsNode? FindNode(LayerPath path)
    {
        var node = _root;
        if (path.IsRoot) return node;
        foreach (var part in Split(path))
        {
            if (node.Children is null || !node.Children.TryGetValue(part, out var child)) return null;
            node = child;
        }
        return node;
    }

    internal static IEnumerable<byte[]> Split(LayerPath path)
    {
        var bytes = path.Bytes.ToArray();
        var start = 0;
        for (var i = 0; i <= bytes.Length; i++)
        {
            if (i < bytes.Length && bytes[i] != (byte)'/') continue;
            yield return bytes[start..i];
            start = i + 1;
        }
    }

    /// <summary>Every path in walk order (a directory, then its children in byte order, recursively).</summary>
    public IEnumerable<FsIndexEntry> Entries
    {
        get
        {
            foreach (var (node, first) in Nodes()) yield return new FsIndexEntry(node.Entry, node.Hash, first);
        }
    }

    /// <summary>Nodes in walk order, with the first path of their inode when they are not it.</summary>
    internal IEnumerable<(FsNode Node, LayerPath? FirstLink)> Nodes()
    {
        var firstOfInode = new Dictionary<long, LayerPath>();
        var stack = new Stack<IEnumerator<FsNode>>();
        stack.Push(_root.Children!.Values.GetEnumerator());
        while (stack.Count > 0)
        {
            var it = stack.Peek();
            if (!it.MoveNext())
            {
                stack.Pop();
                it.Dispose();
                continue;
            }
            var node = it.Current;
            LayerPath? first = null;
            if (_linkedInodes.Contains(node.Inode) && !firstOfInode.TryAdd(node.Inode, node.Entry.Path))
                first = firstOfInode[node.Inode];
            yield return (node, first);
            if (node.Children is not null) stack.Push(node.Children.Values.GetEnumerator());
        }
    }

    /// <summary>Merges a stack of layer tars (bottom first), applying whiteouts and opaque directories.</summary>
    public static async Task<FsIndex> FromLayersAsync(IEnumerable<Func<CancellationToken, Task<Stream>>> layers, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(layers);
        var builder = new FsIndexBuilder();
        foreach (var open in layers)
        {
            var stream = await open(cancellationToken).ConfigureAwait(false);
            var reader = new LayerTarReader(stream);
            await using (reader.ConfigureAwait(false))
                await builder.ApplyLayerAsync(reader, cancellationToken).ConfigureAwait(false);
        }
        return builder.Build();
    }

    /// <summary>Indexes a flattened filesystem (a <c>docker export</c> tar): entries taken literally, no whiteouts.</summary>
    public static async Task<FsIndex> FromFlattenedAsync(ILayerEntrySource source, CancellationToken cancellationToken)
    {
        var builder = new FsIndexBuilder();
        await builder.AddFlattenedAsync(source, cancellationToken).ConfigureAwait(false);
        return builder.Build();
    }

    /// <summary>A new index: this one with <paramref name="layer"/> applied on top.</summary>
    public async Task<FsIndex> ApplyLayerAsync(ILayerEntrySource layer, CancellationToken cancellationToken)
    {
        var builder = new FsIndexBuilder(this);
        await builder.ApplyLayerAsync(layer, cancellationToken).ConfigureAwait(false);
        return builder.Build();
    }

    internal static async ValueTask<byte[]> HashAsync(Stream content, CancellationToken ct)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(81920);
        try
        {
            int n;
            while ((n = await content.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0) sha.AppendData(buffer, 0, n);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
        return sha.GetHashAndReset();
    }
}
