namespace LayerTool.Image.Layers.Index;

/// <summary>
/// Builds an <see cref="FsIndex"/> by applying layers (whiteouts, opaque directories, replacement of
/// another type including recursive removal of a directory, directory over directory updating
/// attributes, hard links) or by adding a flattened filesystem's entries literally.
/// </summary>
public sealed class FsIndexBuilder
{
    private static readonly IReadOnlyDictionary<string, byte[]> NoXattrs = LayerEntry.CreateXattrs([]);

    private readonly FsNode _root;
    private readonly Dictionary<long, int> _linkCounts = [];

    /// <summary>
    /// When the builder starts from an existing index, the nodes it may change: its own copies and the nodes
    /// it created. Every other node still belongs to the start index and is copied (with the path down to
    /// it) before any change, so applying a layer costs memory for what the layer touches, not for the whole
    /// tree. Null for a builder that starts empty: every node is its own.
    /// </summary>
    private readonly HashSet<FsNode>? _owned;
    private long _nextInode;
    private int _serial;
    private int _count;
    private bool _built;

    public FsIndexBuilder()
    {
        _root = NewRoot();
    }

    /// <summary>Starts from <paramref name="start"/>, which stays as it is (changed nodes are copied on write).</summary>
    public FsIndexBuilder(FsIndex start)
    {
        ArgumentNullException.ThrowIfNull(start);
        start = start.InMemory();
        _owned = new HashSet<FsNode>(ReferenceEqualityComparer.Instance);
        _root = start.Root.ShallowClone();
        _owned.Add(_root);
        _count = start.Count;
        foreach (var n in Walk(_root))
        {
            _nextInode = Math.Max(_nextInode, n.Inode);
            // Layers applied from here on must count as above every node already there (opaque
            // directories hide only what lower layers put there).
            _serial = Math.Max(_serial, n.Serial);
            if (start.LinkedInodes.Contains(n.Inode)) _linkCounts[n.Inode] = _linkCounts.GetValueOrDefault(n.Inode) + 1;
        }
    }

    /// <summary>Called for every path a later layer removes or replaces (for wasted-bytes accounting).</summary>
    public Action<RemovedPath>? Removed { get; init; }

    private FsNode NewRoot() =>
        new(new LayerEntry { Path = LayerPath.Root, Type = LayerEntryType.Directory, Mode = 0x1ED }, null, ++_nextInode, 0);

    /// <summary>Applies one layer tar on top of what is there.</summary>
    public async Task ApplyLayerAsync(ILayerEntrySource layer, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(layer);
        CheckNotBuilt();
        _serial++;
        long ordinal = -1;
        while (await layer.ReadNextAsync(cancellationToken).ConfigureAwait(false) is { } entry)
        {
            ordinal++;
            var path = entry.Path;
            if (path.IsRoot || Whiteouts.UnderAufsMetadata(path)) continue;
            switch (Whiteouts.Classify(path))
            {
                case WhiteoutKind.AufsMetadata:
                    continue;
                case WhiteoutKind.Opaque:
                    {
                        // The engine ignores an opaque marker of the root (overlayfs never makes a layer's root
                        // opaque), as the streaming merge does: nothing of the lower layers is hidden or wasted.
                        if (path.Parent.IsRoot) continue;
                        var dir = ResolveForWrite(path.Parent);
                        if (dir?.Children is not null) Prune(dir);
                        continue;
                    }
                case WhiteoutKind.Whiteout:
                    Remove(Whiteouts.Target(path));
                    continue;
                default:
                    break;
            }
            byte[]? hash = null;
            if (entry.Type == LayerEntryType.RegularFile)
                hash = (layer as IContentHashHint)?.CurrentContentHash ?? await FsIndex.HashAsync(layer.Content, cancellationToken).ConfigureAwait(false);
            var node = Put(entry, hash);
            if (entry.Type == LayerEntryType.RegularFile) FileAdded?.Invoke(node, _serial, ordinal);
        }
    }

    /// <summary>Called for every regular file a layer adds: the node, the layer (1-based) and the entry's ordinal in that layer.</summary>
    internal Action<FsNode, int, long>? FileAdded { get; init; }

    /// <summary>Adds a flattened filesystem's entries (a <c>docker export</c>): names are taken literally.</summary>
    public async Task AddFlattenedAsync(ILayerEntrySource source, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        CheckNotBuilt();
        _serial++;
        while (await source.ReadNextAsync(cancellationToken).ConfigureAwait(false) is { } entry)
        {
            if (entry.Path.IsRoot) continue;
            byte[]? hash = null;
            if (entry.Type == LayerEntryType.RegularFile)
                hash = await FsIndex.HashAsync(source.Content, cancellationToken).ConfigureAwait(false);
            Put(entry, hash);
        }
    }

    /// <summary>Starts a new layer (for callers that feed entries through <see cref="Put"/>).</summary>
    internal void BeginLayer() => _serial++;

    /// <summary>Adds one entry whose content hash is already known (flattened semantics).</summary>
    internal FsNode Put(LayerEntry entry, byte[]? hash)
    {
        var path = entry.Path;
        var parent = EnsureParent(path);
        var name = path.Name;
        parent.Children!.TryGetValue(name, out var existing);

        if (entry.Type == LayerEntryType.HardLink)
        {
            var targetPath = entry.HardLinkTarget;
            var target = Resolve(targetPath)
                ?? throw new ImageFormatException($"hard link '{entry.Name}' points to '{targetPath}', which does not exist");
            if (target.Entry.IsDirectory) throw new ImageFormatException($"hard link '{entry.Name}' points to directory '{targetPath}'");
            if (ReferenceEquals(target, existing)) return existing; // linking a path to itself changes nothing
            if (existing is not null) RemoveNode(parent, name, existing);
            var linked = Owned(new FsNode(target.Entry with { Path = path }, target.Hash, target.Inode, _serial));
            if (_linkCounts.TryGetValue(target.Inode, out var c)) _linkCounts[target.Inode] = c + 1;
            else _linkCounts[target.Inode] = 2;
            parent.Children!.Set(linked);
            _count++;
            return linked;
        }

        if (existing is not null && existing.Entry.IsDirectory && entry.IsDirectory)
        {
            existing = Own(parent, existing);
            existing.Entry = entry;
            existing.Serial = _serial;
            return existing;
        }
        if (existing is not null) RemoveNode(parent, name, existing);
        if (entry.Type != LayerEntryType.RegularFile && entry.Size != 0) entry = entry with { Size = 0 };
        var node = Owned(new FsNode(entry, hash, ++_nextInode, _serial));
        parent.Children!.Set(node);
        _count++;
        return node;
    }

    /// <summary>Removes a path (recursively) if present.</summary>
    internal void Remove(LayerPath path)
    {
        var parent = ResolveForWrite(path.Parent);
        if (parent?.Children is null) return;
        var name = path.Name;
        if (parent.Children.TryGetValue(name, out var node)) RemoveNode(parent, name, node);
    }

    private void RemoveNode(FsNode parent, ReadOnlySpan<byte> name, FsNode node)
    {
        parent.Children!.Remove(name);
        Forget(node);
    }

    private void Forget(FsNode node)
    {
        _count--;
        var last = true;
        if (_linkCounts.TryGetValue(node.Inode, out var c))
        {
            if (c > 1)
            {
                // The last one left is an ordinary path again (not a group of one).
                if (c == 2) _linkCounts.Remove(node.Inode);
                else _linkCounts[node.Inode] = c - 1;
                last = false;
            }
            else
            {
                _linkCounts.Remove(node.Inode);
            }
        }
        Removed?.Invoke(new RemovedPath(node.Entry, node.Serial, last));
        if (node.Children is not null)
        {
            foreach (var child in node.Children.Values) Forget(child);
        }
    }

    /// <summary>Opaque directory: drop everything below it that earlier layers put there.</summary>
    private void Prune(FsNode dir)
    {
        foreach (var child in dir.Children!.ToArray())
        {
            if (child.Serial < _serial) RemoveNode(dir, child.Entry.Path.Name, child);
            else if (child.Children is not null) Prune(Own(dir, child));
        }
    }

    /// <summary><paramref name="node"/> itself when this builder may change it, else a copy put in its place under <paramref name="parent"/> (which must be changeable).</summary>
    private FsNode Own(FsNode parent, FsNode node)
    {
        if (_owned is null || _owned.Contains(node)) return node;
        var copy = node.ShallowClone();
        parent.Children!.Set(copy);
        _owned.Add(copy);
        return copy;
    }

    private FsNode Owned(FsNode created)
    {
        _owned?.Add(created);
        return created;
    }

    /// <summary>Like <see cref="Resolve(LayerPath)"/>, owning every node down to the result so it may be changed.</summary>
    private FsNode? ResolveForWrite(LayerPath path) => Resolve(path, forWrite: true);

    internal FsNode? Resolve(LayerPath path) => Resolve(path, forWrite: false);

    private FsNode? Resolve(LayerPath path, bool forWrite)
    {
        var node = _root;
        if (path.IsRoot) return node;
        foreach (var part in FsIndex.Split(path))
        {
            if (node.Children is null || !node.Children.TryGetValue(part, out var child)) return null;
            node = forWrite ? Own(node, child) : child;
        }
        return node;
    }

    /// <summary>The parent directory of <paramref name="path"/>, created (0755, root) where missing as docker's applier does.</summary>
    private FsNode EnsureParent(LayerPath path)
    {
        var node = _root;
        // Each ancestor shares the path's bytes: a created chain of parents costs memory linear in the path.
        foreach (var current in path.Ancestors())
        {
            var part = current.Name;
            if (!node.Children!.TryGetValue(part, out var child) || child.Children is null)
            {
                if (child is not null) RemoveNode(node, part, child);
                child = Owned(new FsNode(new LayerEntry { Path = current, Type = LayerEntryType.Directory, Mode = 0x1ED, Xattrs = NoXattrs }, null, ++_nextInode, _serial));
                node.Children.Set(child);
                _count++;
            }
            else
            {
                child = Own(node, child);
            }
            node = child;
        }
        return node;
    }

    /// <summary>Freezes the index. The builder cannot be used afterwards.</summary>
    public FsIndex Build()
    {
        CheckNotBuilt();
        _built = true;
        return new FsIndex(_root, _count, [.. _linkCounts.Keys]);
    }

    private void CheckNotBuilt()
    {
        if (_built) throw new InvalidOperationException("the index was already built");
    }

    private static IEnumerable<FsNode> Walk(FsNode root)
    {
        var stack = new Stack<FsNode>();
        stack.Push(root);
        while (stack.Count > 0)
        {
            var n = stack.Pop();
            yield return n;
            if (n.Children is not null)
            {
                foreach (var c in n.Children.Values) stack.Push(c);
            }
        }
    }
}

/// <summary>A path that a later layer removed or replaced.</summary>
/// <param name="Entry">What was there.</param>
/// <param name="Layer">The 1-based layer that had put it there.</param>
/// <param name="LastLink">False when other hard links still keep the same file.</param>
public sealed record RemovedPath(LayerEntry Entry, int Layer, bool LastLink);
