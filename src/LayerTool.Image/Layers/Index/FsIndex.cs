using System.Security.Cryptography;
using LayerTool.Image.Layers.Content;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.Image.Layers.Index;

/// <summary>
/// The merged view of a filesystem (a stack of layers, or a flattened export): every path with its
/// metadata and, for regular files, the SHA-256 of the content (never the content). Immutable; build
/// one with <see cref="FsIndexBuilder"/> or the factory methods here. <see cref="Entries"/> walks it in
/// docker's export order. Two kinds with the same behaviour: a tree in memory (what a builder makes), or an
/// <see cref="FsIndexStore"/> on disk, walked as a stream with a sparse key index for lookups (what a
/// squash uses, so its memory does not grow with the number of paths). <see cref="FsIndexSerializer"/>
/// and the base-index cache keep the on-disk kind.
/// </summary>
public sealed class FsIndex : IDisposable
{
    private readonly FsNode? _root;
    private readonly FsIndexStore? _store;
    private readonly HashSet<long> _linkedInodes;
    private Dictionary<long, LayerPath>? _firstOfInode;

    internal FsIndex(FsNode root, int count, HashSet<long> linkedInodes)
    {
        _root = root;
        Count = count;
        _linkedInodes = linkedInodes;
    }

    /// <summary>An index on disk. Inodes are group ordinals plus one (unique per path unless hard-linked).</summary>
    internal FsIndex(FsIndexStore store)
    {
        _store = store;
        Count = checked((int)store.Count);
        _linkedInodes = [.. store.LinkedGroups.Select(g => g + 1)];
    }

    /// <summary>The file behind an on-disk index; null for a tree.</summary>
    internal FsIndexStore? Store => _store;

    /// <summary>True for an index read from disk as a stream (see the type's summary).</summary>
    public bool IsOnDisk => _store is not null;

    /// <summary>This index as a tree in memory (itself when it is one): for building on top of it.</summary>
    internal FsIndex InMemory()
    {
        if (_store is null) return this;
        var builder = new FsIndexBuilder();
        builder.BeginLayer();
        foreach (var r in _store.Records())
        {
            var entry = r.FirstLink is null ? r.Entry : r.Entry.AsHardLinkTo(r.FirstLink);
            builder.Put(entry, r.Hash);
        }
        return builder.Build();
    }

    /// <summary>Closes an on-disk index's file (an unlinked temp file is gone then; the index cannot be read
    /// afterwards); nothing for a tree.</summary>
    public void Dispose() => _store?.Close();

    private static FsNode Node(StoredRecord r) => new(r.Entry, r.Hash, r.Group + 1, 0) { Origin = r.Origin };

    /// <summary>An empty filesystem (<c>FROM scratch</c>).</summary>
    public static FsIndex Empty { get; } = new FsIndexBuilder().Build();

    /// <summary>Number of paths (the root is not counted).</summary>
    public int Count { get; }

    internal FsNode Root => _root ?? throw new InvalidOperationException("an on-disk index has no tree; use InMemory()");

    internal IReadOnlySet<long> LinkedInodes => _linkedInodes;

    /// <summary>Looks a path up.</summary>
    public FsIndexEntry? Find(LayerPath path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (_store is not null)
        {
            return path.IsRoot || _store.Find(path) is not { } r ? null
                : new FsIndexEntry(r.Entry, r.Hash, r.FirstLink) { InHardLinkGroup = _store.LinkedGroups.Contains(r.Group) };
        }
        var node = FindNode(path);
        if (node is null || path.IsRoot) return null;
        LayerPath? first = null;
        if (_linkedInodes.Contains(node.Inode))
        {
            _firstOfInode ??= FirstPaths();
            first = _firstOfInode[node.Inode];
            if (first == path) first = null;
        }
        return new FsIndexEntry(node.Entry, node.Hash, first) { InHardLinkGroup = _linkedInodes.Contains(node.Inode) };
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
        if (_store is not null)
        {
            if (path.IsRoot) throw new InvalidOperationException("an on-disk index has no root node");
            return _store.Find(path) is { } r ? Node(r) : null;
        }
        var node = _root!;
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
            foreach (var (node, first) in Nodes())
                yield return new FsIndexEntry(node.Entry, node.Hash, first) { InHardLinkGroup = _linkedInodes.Contains(node.Inode) };
        }
    }

    /// <summary>Nodes in walk order, with the first path of their inode when they are not it.</summary>
    internal IEnumerable<(FsNode Node, LayerPath? FirstLink)> Nodes()
    {
        if (_store is not null)
        {
            foreach (var r in _store.Records()) yield return (Node(r), r.FirstLink);
            yield break;
        }
        var firstOfInode = new Dictionary<long, LayerPath>();
        var stack = new Stack<IEnumerator<FsNode>>();
        stack.Push(_root!.Children!.Values.GetEnumerator());
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

    /// <summary>
    /// Merges a stack of layer tars (bottom first) into an on-disk index, one layer at a time: each layer's
    /// entries (metadata and content hashes) are logged to disk, then merged with the index so far as two
    /// walk-order streams (<see cref="LayerMerge"/>) into the next index file. Memory stays flat whatever the
    /// number of paths. A layer of a shape the merge does not compute (a hard link to a path of a lower layer
    /// that this layer does not carry, a path given twice, an entry under a non-directory) makes it fall back
    /// to <see cref="FromLayersAsync"/>, which applies every shape docker accepts, in memory.
    /// </summary>
    public static async Task<FsIndex> FromLayersOnDiskAsync(IReadOnlyList<Func<CancellationToken, Task<Stream>>> layers, string? tempDirectory,
        CancellationToken cancellationToken) =>
        await MergeLayersOnDiskAsync(layers, tempDirectory, null, cancellationToken).ConfigureAwait(false)
        ?? await FromLayersAsync(layers, cancellationToken).ConfigureAwait(false);

    /// <summary>
    /// The on-disk merge of <see cref="FromLayersOnDiskAsync"/> without its fallback: null when a layer has a
    /// shape the streaming merge does not compute. With a <paramref name="spool"/>, every regular file's content
    /// is copied into it as the layers are read, and the index records where each file's content is.
    /// </summary>
    internal static async Task<FsIndex?> MergeLayersOnDiskAsync(IReadOnlyList<Func<CancellationToken, Task<Stream>>> layers, string? tempDirectory,
        ContentSpool? spool, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(layers);
        var current = Empty;
        long stackOrdinal = 0;
        try
        {
            foreach (var open in layers)
            {
                using var log = new WrittenEntryLog(tempDirectory);
                var first = stackOrdinal;
                await log.AppendTarAsync(await open(cancellationToken).ConfigureAwait(false), spool is null ? null
                    : (index, entry, content, ct) => spool.AddAsync(first + index, content, entry.Size, ct), cancellationToken).ConfigureAwait(false);
                var next = Merge(current, log, spool is null ? -1 : stackOrdinal, tempDirectory, cancellationToken);
                stackOrdinal += log.Count;
                current.Dispose();
                current = next ?? Empty;
                if (next is null) return null;
            }
            return current;
        }
        catch
        {
            current.Dispose();
            throw;
        }
    }

    /// <summary>One layer onto an index, into a new on-disk index; null when the merge cannot compute this layer's shape.</summary>
    private static FsIndex? Merge(FsIndex lower, WrittenEntryLog layer, long originBase, string? tempDirectory, CancellationToken cancellationToken)
    {
        var writer = new FsIndexStoreWriter(null, tempDirectory);
        try
        {
            var unsupported = false;
            new LayerMerge(lower, layer.Read)
            {
                OriginBase = originBase,
                Emit = e => writer.Add(e.HardLinkOf is null ? e.Entry
                    : e.Entry.AsHardLinkTo(e.HardLinkOf), e.ContentHash, e.Origin),
                Problem = (_, _) => unsupported = true,
                Stop = () => unsupported,
            }.Run(cancellationToken);
            if (unsupported)
            {
                writer.Dispose();
                return null;
            }
            // The index shares the writer's (unlinked) file: the writer is not disposed on success.
            return writer.Build();
        }
        catch (ImageFormatException)
        {
            writer.Dispose();
            return null;
        }
        catch
        {
            writer.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Indexes a flattened filesystem given in walk order (an export, the fast path's merged layer directories)
    /// into an on-disk index: memory stays flat whatever the number of paths.
    /// </summary>
    /// <param name="source">The filesystem; an <see cref="IContentHashHint"/> spares hashing files it knows.</param>
    /// <param name="tempDirectory">Where the (unlinked) index file goes; the system temp directory when null.</param>
    /// <param name="cancellationToken">Cancels the work.</param>
    public static async Task<FsIndex> FromFlattenedOnDiskAsync(ILayerEntrySource source, string? tempDirectory, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        var writer = new FsIndexStoreWriter(null, tempDirectory);
        try
        {
            while (await source.ReadNextAsync(cancellationToken).ConfigureAwait(false) is { } entry)
            {
                if (entry.Path.IsRoot) continue;
                byte[]? hash = null;
                if (entry.Type == LayerEntryType.RegularFile)
                    hash = (source as IContentHashHint)?.CurrentContentHash ?? await HashAsync(source.Content, cancellationToken).ConfigureAwait(false);
                writer.Add(entry, hash);
            }
            // The index shares the writer's (unlinked) file: the writer is not disposed on success.
            return writer.Build();
        }
        catch
        {
            writer.Dispose();
            throw;
        }
    }

    /// <summary>A new index: this one with <paramref name="layer"/> applied on top.</summary>
    public async Task<FsIndex> ApplyLayerAsync(ILayerEntrySource layer, CancellationToken cancellationToken)
    {
        var builder = new FsIndexBuilder(InMemory());
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
