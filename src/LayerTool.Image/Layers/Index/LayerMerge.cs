using LayerTool.Image.Layers.Content;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.Image.Layers.Index;

/// <summary>
/// A base filesystem with one layer applied, computed as a stream: the base's paths and the layer's entries
/// (sorted by the path they act on) merged in walk order, each resulting path handed to <see cref="Emit"/> in
/// walk order. Whiteouts and opaque directories hide base subtrees, a non-directory replacing a directory
/// hides its children, missing parents appear as an applier creates them (root's 0755 directories), hard-link
/// groups keep their first surviving path. Memory holds the directory chain, the hard-link groups and the
/// few entries a layer has out of walk order, never a tree of the filesystem.
/// </summary>
/// <remarks>
/// The layer is read twice: first for its shape (entries out of walk order, opaque directories, hard-link
/// targets), then in order. Shapes an applier accepts but this merge does not compute are reported to
/// <see cref="Problem"/> instead of guessed at: a hard link to a path the layer does not carry (docker's layers
/// carry the whole group: linking a lower file copies it up), one path acted on twice, an entry under a
/// non-directory, a whiteout after entries it removes. A link may come before its target in walk order (a
/// tar in readdir order): the groups are found in a first pass over the layer.
/// </remarks>
internal sealed class LayerMerge(FsIndex baseIndex, Func<IEnumerable<WrittenLayerEntry>> written)
{
    private readonly List<(LayerPath Path, bool IncludeSelf, long WhiteoutIndex)> _hidden = [];
    private readonly List<LayerPath> _chain = [];
    private readonly Dictionary<LayerPath, long> _opaque = [];
    // The layer's hard links (a few): link → target as written, with the link's tar index; each group's root
    // file and its first path in walk order, found before the merge so a link may come before its target.
    private readonly Dictionary<LayerPath, (LayerPath Target, long Index)> _links = [];
    private readonly Dictionary<LayerPath, LayerPath> _rootOf = [];
    private readonly Dictionary<LayerPath, (Item File, LayerPath First)> _groups = [];
    private readonly Dictionary<long, LayerPath> _baseFirst = [];
    private LayerPath? _lastPath;
    private bool _lastIsDirectory;

    private readonly record struct Item(LayerPath Key, bool Whiteout, LayerEntry Entry, byte[]? Hash, long Index);

    /// <summary>Receives every path of the result, in walk order.</summary>
    public required Action<FsIndexEntry> Emit { get; init; }

    /// <summary>Receives a path the merge cannot compute, with why.</summary>
    public required Action<LayerPath, string> Problem { get; init; }

    /// <summary>When 0 or more, the layer's entries are spooled (<see cref="ContentSpool"/>) from this stack ordinal
    /// on: a regular file of the layer gets origin <c>OriginBase + its entry index</c>; a base path keeps its own.</summary>
    public long OriginBase { get; init; } = -1;

    /// <summary>Checked between steps: true ends the merge early.</summary>
    public Func<bool> Stop { get; init; } = static () => false;

    public void Run(CancellationToken ct)
    {
        // Pass 1: which entries come out of walk order (by the path they act on), and the layer's shape.
        var late = new List<(Item Item, long Index)>();
        var lateIndexes = new HashSet<long>();
        LayerPath? max = null;
        long index = -1;
        foreach (var w in written())
        {
            index++;
            if (ToItem(w, index) is not { } item) continue;
            if (item.Entry.Type == LayerEntryType.HardLink && !item.Whiteout) _links[item.Key] = (item.Entry.HardLinkTarget, item.Index);
            if (max is null || item.Key.CompareTo(max) > 0)
            {
                max = item.Key;
            }
            else
            {
                late.Add((item, index));
                lateIndexes.Add(index);
            }
        }
        late.Sort((a, b) => a.Item.Key.CompareTo(b.Item.Key) is var c && c != 0 ? c : a.Index.CompareTo(b.Index));
        if (_links.Count > 0) FindGroups();

        using var baseWalk = baseIndex.Nodes().GetEnumerator();
        using var layer = InOrder(late, lateIndexes).GetEnumerator();
        var hasBase = baseWalk.MoveNext();
        var hasLayer = layer.MoveNext();
        LayerPath? previousKey = null;
        var steps = 0;
        while ((hasBase || hasLayer) && !Stop())
        {
            if ((++steps & 0xFFF) == 0) ct.ThrowIfCancellationRequested();
            if (hasLayer && previousKey is not null && layer.Current.Key == previousKey)
            {
                Problem(layer.Current.Key, "the layer acts on this path twice");
                hasLayer = layer.MoveNext();
                continue;
            }
            var c = !hasBase ? 1 : !hasLayer ? -1 : baseWalk.Current.Node.Entry.Path.CompareTo(layer.Current.Key);
            // A hidden base path is dropped only when it is next: the hides are a stack along the walk, and
            // looking ahead from a base path past the layer's next item would drop hides that item still needs.
            if (c <= 0 && IsHidden(baseWalk.Current.Node.Entry.Path))
            {
                hasBase = baseWalk.MoveNext();
                continue;
            }
            if (c < 0)
            {
                FromBase(baseWalk.Current.Node);
                hasBase = baseWalk.MoveNext();
                continue;
            }
            previousKey = layer.Current.Key;
            Apply(layer.Current, c == 0 ? baseWalk.Current.Node.Entry : null);
            if (c == 0) hasBase = baseWalk.MoveNext();
            hasLayer = layer.MoveNext();
        }
    }

    /// <summary>Each link's root file (following links to links) and each group's first path in walk order.</summary>
    private void FindGroups()
    {
        foreach (var link in _links.Keys)
        {
            var root = _links[link].Target;
            for (var hops = 0; _links.TryGetValue(root, out var next) && hops <= _links.Count; hops++) root = next.Target;
            _rootOf[link] = root;
        }
        var roots = _rootOf.Values.ToHashSet();
        long index = -1;
        foreach (var w in written())
        {
            index++;
            if (ToItem(w, index) is { Whiteout: false } item && item.Entry.Type != LayerEntryType.HardLink && roots.Contains(item.Key))
                _groups[item.Key] = (item, item.Key);
        }
        foreach (var (link, root) in _rootOf)
        {
            if (_groups.TryGetValue(root, out var g) && link.CompareTo(g.First) < 0) _groups[root] = (g.File, link);
        }
    }

    /// <summary>The path a written entry acts on, or null for entries an applier ignores.</summary>
    private Item? ToItem(WrittenLayerEntry w, long index)
    {
        var path = w.Entry.Path;
        if (path.IsRoot || Whiteouts.UnderAufsMetadata(path)) return null;
        switch (Whiteouts.Classify(path))
        {
            case WhiteoutKind.AufsMetadata:
                return null;
            case WhiteoutKind.Opaque:
                _opaque[path.Parent] = Math.Max(index, _opaque.GetValueOrDefault(path.Parent, -1));
                return null;
            case WhiteoutKind.Whiteout:
                return new Item(Whiteouts.Target(path), true, w.Entry, null, index);
            default:
                return new Item(path, false, w.Entry, w.ContentHash, index);
        }
    }

    /// <summary>Pass 2: the layer's items in walk order (those written in order, merged with the sorted late ones).</summary>
    private IEnumerable<Item> InOrder(List<(Item Item, long Index)> late, HashSet<long> lateIndexes)
    {
        var l = 0;
        long index = -1;
        foreach (var w in written())
        {
            index++;
            if (lateIndexes.Contains(index) || ToItem(w, index) is not { } item) continue;
            while (l < late.Count && late[l].Item.Key.CompareTo(item.Key) <= 0) yield return late[l++].Item;
            yield return item;
        }
        while (l < late.Count) yield return late[l++].Item;
    }

    private bool IsHidden(LayerPath path)
    {
        while (_hidden.Count > 0 && !(_hidden[^1].Path == path || _hidden[^1].Path.IsAncestorOf(path))) _hidden.RemoveAt(_hidden.Count - 1);
        foreach (var (p, self, _) in _hidden)
        {
            if (p != path || self) return true;
        }
        return false;
    }

    private void Hide(LayerPath path, bool includeSelf, long whiteoutIndex = -1)
    {
        while (_hidden.Count > 0 && !(_hidden[^1].Path == path || _hidden[^1].Path.IsAncestorOf(path))) _hidden.RemoveAt(_hidden.Count - 1);
        _hidden.Add((path, includeSelf, whiteoutIndex));
    }

    /// <summary>
    /// A whiteout or an opaque marker of an ancestor that comes later in the tar than the entry can remove the
    /// entry too (an applier works in tar order, and docker's drops a directory the layer did not write itself
    /// even when the layer wrote below it): not a shape of real layers (docker writes a directory's marker
    /// before its children; a whiteout hides what lower layers have), so it is reported rather than computed.
    /// </summary>
    private LayerPath? WhitedOutLater(Item item)
    {
        IsHidden(item.Key); // drops the hides that are not above this path
        foreach (var (p, _, wi) in _hidden)
        {
            if (wi > item.Index && p.IsAncestorOf(item.Key)) return p;
        }
        if (_opaque.Count > 0)
        {
            foreach (var dir in item.Key.Ancestors())
            {
                if (_opaque.TryGetValue(dir, out var oi) && oi > item.Index) return dir;
            }
        }
        return null;
    }

    private void FromBase(FsNode node)
    {
        var entry = node.Entry;
        LayerPath? first = null;
        if (!entry.IsDirectory && baseIndex.LinkedInodes.Contains(node.Inode))
        {
            // The group's first surviving path in walk order carries it; the layer may have replaced earlier ones.
            if (!_baseFirst.TryAdd(node.Inode, entry.Path)) first = _baseFirst[node.Inode];
        }
        Result(new FsIndexEntry(entry, node.Hash, first) { Origin = node.Origin }, fromLayer: false);
    }

    private void Apply(Item item, LayerEntry? baseEntry)
    {
        var path = item.Key;
        if (item.Whiteout)
        {
            Hide(path, includeSelf: true, item.Index);
            return;
        }
        if (WhitedOutLater(item) is { } gone)
        {
            Problem(path, $"the layer writes it, then whites out '{gone}' or marks it opaque");
            return;
        }
        var entry = item.Entry;
        if (baseEntry is { IsDirectory: true } && !entry.IsDirectory) Hide(path, includeSelf: false);

        FsIndexEntry result;
        if (entry.Type == LayerEntryType.HardLink)
        {
            var (target, _) = _links[path];
            var targetIndex = _links.TryGetValue(target, out var viaLink) ? viaLink.Index
                : _groups.TryGetValue(target, out var direct) ? direct.File.Index : -1;
            if (!_groups.TryGetValue(_rootOf[path], out var group) || targetIndex < 0)
            {
                Problem(path, $"hard link to '{target}', which the layer does not carry");
                return;
            }
            if (targetIndex > item.Index)
            {
                Problem(path, $"hard link to '{target}', which comes after it in the layer");
                return;
            }
            if (group.File.Entry.IsDirectory)
            {
                Problem(path, $"hard link to directory '{target}'");
                return;
            }
            var file = Normalized(group.File);
            result = new FsIndexEntry(file.Entry with { Path = path }, file.ContentHash, group.First == path ? null : group.First) { Origin = Origin(group.File) };
        }
        else
        {
            var file = Normalized(item);
            LayerPath? first = null;
            if (_groups.TryGetValue(path, out var group))
            {
                if (entry.IsDirectory) Problem(path, "a hard link points to this directory");
                else if (group.First != path) first = group.First;
            }
            result = new FsIndexEntry(file.Entry, file.ContentHash, first) { Origin = Origin(item) };
        }
        Result(result, fromLayer: true);
    }

    /// <summary>A layer entry as an index holds it: no size but a regular file's, which must have its hash.</summary>
    private static WrittenLayerEntry Normalized(Item item)
    {
        var entry = item.Entry;
        if (entry.Type != LayerEntryType.RegularFile && entry.Size != 0) entry = entry with { Size = 0 };
        if (entry.Type == LayerEntryType.RegularFile && item.Hash is null)
            throw new ImageFormatException($"the recorded entry '{entry.Name}' has no content hash");
        return new WrittenLayerEntry(entry, item.Hash);
    }

    private long Origin(Item item) => OriginBase >= 0 && item.Entry.Type == LayerEntryType.RegularFile ? OriginBase + item.Index : -1;

    /// <summary>One path of the base with the layer applied, after the parents it lacks.</summary>
    private void Result(FsIndexEntry actual, bool fromLayer)
    {
        var path = actual.Path;
        while (_chain.Count > 0 && !_chain[^1].IsAncestorOf(path)) _chain.RemoveAt(_chain.Count - 1);
        if (fromLayer && _chain.Count != path.Depth - 1)
        {
            foreach (var dir in path.Ancestors())
            {
                if (_chain.Contains(dir)) continue;
                if (_lastPath == dir && !_lastIsDirectory)
                {
                    Problem(path, $"the layer writes it under '{dir}', which is not a directory");
                    return;
                }
                // An applier creates a missing parent as root's 0755 directory.
                Emit(new FsIndexEntry(new LayerEntry { Path = dir, Type = LayerEntryType.Directory, Mode = 0x1ED }, null, null));
                _chain.Add(dir);
                if (_opaque.ContainsKey(dir)) Hide(dir, includeSelf: false);
            }
        }
        Emit(actual);
        _lastPath = path;
        _lastIsDirectory = actual.Entry.IsDirectory;
        if (!_lastIsDirectory) return;
        _chain.Add(path);
        // An opaque directory hides what the base has below it, whether the layer carries the directory itself or only its marker.
        if (_opaque.ContainsKey(path)) Hide(path, includeSelf: false);
    }
}
