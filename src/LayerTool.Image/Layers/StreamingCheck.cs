namespace LayerTool.Image.Layers;

/// <summary>
/// <see cref="LayerVerifier"/>'s check as three streams merged in walk order: the base's paths, the layer's
/// entries (sorted by the path they act on) and the expected filesystem. The base with the layer applied is
/// computed path by path (whiteouts and opaque directories hide base subtrees, a non-directory replacing a
/// directory hides its children, missing parents appear as an applier creates them) and compared with the
/// expected path at the same place, so memory holds the directory chain, the hard-link groups and the few
/// entries a layer writes out of walk order, never a tree of the filesystem.
/// </summary>
/// <remarks>
/// The layer is read twice: first for its shape (entries out of walk order, opaque directories, hard-link
/// targets), then in order. A hard link must point to a path the layer wrote earlier in walk order (what a
/// squash layer always does); anything else is reported as a difference rather than guessed at, so the check
/// can refuse a good layer of another shape but never pass a wrong one.
/// </remarks>
internal sealed class StreamingCheck(FsIndex baseIndex, Func<IEnumerable<WrittenLayerEntry>> written, FsIndex expected, int limit)
{
    private readonly List<FsDifference> _diffs = [];
    private readonly List<(LayerPath Path, bool IncludeSelf)> _hidden = [];
    private readonly List<LayerPath> _chain = [];
    private readonly HashSet<LayerPath> _opaque = [];
    private readonly HashSet<LayerPath> _linkTargets = [];
    private readonly Dictionary<LayerPath, (LayerEntry Entry, byte[]? Hash, LayerPath First)> _layerGroups = [];
    private readonly Dictionary<long, LayerPath> _baseFirst = [];
    private IEnumerator<FsIndexEntry>? _expected;
    private FsIndexEntry? _next;
    private LayerPath? _lastPath;
    private bool _lastIsDirectory;

    private readonly record struct Item(LayerPath Key, bool Whiteout, LayerEntry Entry, byte[]? Hash);

    private bool Full => _diffs.Count >= limit;

    public IReadOnlyList<FsDifference> Run(CancellationToken ct)
    {
        // Pass 1: which entries come out of walk order (by the path they act on), and the layer's shape.
        var late = new List<(Item Item, long Index)>();
        var lateIndexes = new HashSet<long>();
        LayerPath? max = null;
        long index = -1;
        foreach (var w in written())
        {
            index++;
            if (ToItem(w) is not { } item) continue;
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
        _expected = expected.Entries.GetEnumerator();
        try
        {
            AdvanceExpected();
            var hasBase = baseWalk.MoveNext();
            var hasLayer = layer.MoveNext();
            LayerPath? previousKey = null;
            var steps = 0;
            while ((hasBase || hasLayer) && !Full)
            {
                if ((++steps & 0xFFF) == 0) ct.ThrowIfCancellationRequested();
                if (hasBase && IsHidden(baseWalk.Current.Node.Entry.Path))
                {
                    hasBase = baseWalk.MoveNext();
                    continue;
                }
                if (hasLayer && previousKey is not null && layer.Current.Key == previousKey)
                {
                    Difference(layer.Current.Key, "the layer acts on this path twice");
                    hasLayer = layer.MoveNext();
                    continue;
                }
                var c = !hasBase ? 1 : !hasLayer ? -1 : baseWalk.Current.Node.Entry.Path.CompareTo(layer.Current.Key);
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
            while (_next is not null && !Full)
            {
                Difference(_next.Path, "missing");
                AdvanceExpected();
            }
        }
        finally
        {
            _expected.Dispose();
        }
        return _diffs;
    }

    /// <summary>The path a written entry acts on, or null for entries an applier ignores.</summary>
    private Item? ToItem(WrittenLayerEntry w)
    {
        var path = w.Entry.Path;
        if (path.IsRoot || Whiteouts.UnderAufsMetadata(path)) return null;
        switch (Whiteouts.Classify(path))
        {
            case WhiteoutKind.AufsMetadata:
                return null;
            case WhiteoutKind.Opaque:
                _opaque.Add(path.Parent);
                return null;
            case WhiteoutKind.Whiteout:
                return new Item(Whiteouts.Target(path), true, w.Entry, null);
            default:
                return new Item(path, false, w.Entry, w.ContentHash);
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
            if (lateIndexes.Contains(index) || ToItem(w) is not { } item) continue;
            while (l < late.Count && late[l].Item.Key.CompareTo(item.Key) <= 0) yield return late[l++].Item;
            yield return item;
        }
        while (l < late.Count) yield return late[l++].Item;
    }

    private bool IsHidden(LayerPath path)
    {
        while (_hidden.Count > 0 && !(_hidden[^1].Path == path || _hidden[^1].Path.IsAncestorOf(path))) _hidden.RemoveAt(_hidden.Count - 1);
        foreach (var (p, self) in _hidden)
        {
            if (p != path || self) return true;
        }
        return false;
    }

    private void Hide(LayerPath path, bool includeSelf)
    {
        while (_hidden.Count > 0 && !(_hidden[^1].Path == path || _hidden[^1].Path.IsAncestorOf(path))) _hidden.RemoveAt(_hidden.Count - 1);
        _hidden.Add((path, includeSelf));
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
        Result(new FsIndexEntry(entry, node.Hash, first), fromLayer: false);
    }

    private void Apply(Item item, LayerEntry? baseEntry)
    {
        var path = item.Key;
        if (item.Whiteout)
        {
            Hide(path, includeSelf: true);
            return;
        }
        var entry = item.Entry;
        if (baseEntry is { IsDirectory: true } && !entry.IsDirectory) Hide(path, includeSelf: false);
        if (entry.IsDirectory && _opaque.Contains(path)) Hide(path, includeSelf: false);

        FsIndexEntry result;
        if (entry.Type == LayerEntryType.HardLink)
        {
            var target = entry.HardLinkTarget;
            if (!_layerGroups.TryGetValue(target, out var group))
            {
                Difference(path, $"hard link to '{target}', which the layer does not write before it");
                return;
            }
            result = new FsIndexEntry(group.Entry with { Path = path }, group.Hash, group.First);
            if (_linkTargets.Contains(path)) _layerGroups[path] = group;
        }
        else
        {
            if (entry.Type != LayerEntryType.RegularFile && entry.Size != 0) entry = entry with { Size = 0 };
            if (entry.Type == LayerEntryType.RegularFile && item.Hash is null)
                throw new ImageFormatException($"the recorded entry '{entry.Name}' has no content hash");
            result = new FsIndexEntry(entry, item.Hash, null);
            if (_linkTargets.Contains(path))
            {
                if (entry.IsDirectory) Difference(path, "a hard link points to this directory");
                else _layerGroups[path] = (entry, item.Hash, path);
            }
        }
        Result(result, fromLayer: true);
    }

    /// <summary>One path of the base with the layer applied: compared with the expected path at the same place.</summary>
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
                    Difference(path, $"the layer writes it under '{dir}', which is not a directory");
                    return;
                }
                // An applier creates a missing parent as root's 0755 directory.
                Compare(new FsIndexEntry(new LayerEntry { Path = dir, Type = LayerEntryType.Directory, Mode = 0x1ED }, null, null));
                _chain.Add(dir);
            }
        }
        Compare(actual);
        _lastPath = path;
        _lastIsDirectory = actual.Entry.IsDirectory;
        if (_lastIsDirectory) _chain.Add(path);
    }

    private void Compare(FsIndexEntry actual)
    {
        while (_next is not null && _next.Path.CompareTo(actual.Path) < 0)
        {
            Difference(_next.Path, "missing");
            AdvanceExpected();
        }
        if (_next is not null && _next.Path == actual.Path)
        {
            if (LayerVerifier.Describe(_next, actual) is { } what) Difference(actual.Path, what);
            AdvanceExpected();
        }
        else
        {
            Difference(actual.Path, "unexpected");
        }
    }

    private void AdvanceExpected() => _next = _expected!.MoveNext() ? _expected.Current : null;

    private void Difference(LayerPath path, string what)
    {
        if (!Full) _diffs.Add(new FsDifference(path, what));
    }
}
