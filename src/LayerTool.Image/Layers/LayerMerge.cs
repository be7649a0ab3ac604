namespace LayerTool.Image.Layers;

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
/// <see cref="Problem"/> instead of guessed at: a hard link to a path the layer does not write earlier in
/// walk order (a squash layer never has one; docker's layers carry the whole group), one path acted on twice,
/// an entry under a non-directory.
/// </remarks>
internal sealed class LayerMerge(FsIndex baseIndex, Func<IEnumerable<WrittenLayerEntry>> written)
{
    private readonly List<(LayerPath Path, bool IncludeSelf, long WhiteoutIndex)> _hidden = [];
    private readonly List<LayerPath> _chain = [];
    private readonly Dictionary<LayerPath, long> _opaque = [];
    private readonly HashSet<LayerPath> _linkTargets = [];
    private readonly Dictionary<LayerPath, (LayerEntry Entry, byte[]? Hash, LayerPath First, long Origin)> _layerGroups = [];
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
            if (item.Entry.Type == LayerEntryType.HardLink && !item.Whiteout) _linkTargets.Add(item.Entry.HardLinkTarget);
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
            var target = entry.HardLinkTarget;
            if (!_layerGroups.TryGetValue(target, out var group))
            {
                Problem(path, $"hard link to '{target}', which the layer does not write before it");
                return;
            }
            result = new FsIndexEntry(group.Entry with { Path = path }, group.Hash, group.First) { Origin = group.Origin };
            if (_linkTargets.Contains(path)) _layerGroups[path] = group;
        }
        else
        {
            if (entry.Type != LayerEntryType.RegularFile && entry.Size != 0) entry = entry with { Size = 0 };
            if (entry.Type == LayerEntryType.RegularFile && item.Hash is null)
                throw new ImageFormatException($"the recorded entry '{entry.Name}' has no content hash");
            var origin = OriginBase >= 0 && entry.Type == LayerEntryType.RegularFile ? OriginBase + item.Index : -1;
            result = new FsIndexEntry(entry, item.Hash, null) { Origin = origin };
            if (_linkTargets.Contains(path))
            {
                if (entry.IsDirectory) Problem(path, "a hard link points to this directory");
                else _layerGroups[path] = (entry, item.Hash, path, origin);
            }
        }
        Result(result, fromLayer: true);
    }

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
