using LayerTool.Image.Layers.Index;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.Image.Layers.Diff;

/// <summary>
/// <see cref="LayerVerifier"/>'s check as streams: the base with the layer applied (<see cref="LayerMerge"/>)
/// compared path by path with the expected filesystem walked alongside. A layer shape the merge does not
/// compute is a difference, so the check can refuse a good layer of another shape but never pass a wrong one.
/// </summary>
internal sealed class StreamingCheck(FsIndex baseIndex, Func<IEnumerable<WrittenLayerEntry>> written, FsIndex expected, int limit)
{
    private readonly List<FsDifference> _diffs = [];
    private IEnumerator<FsIndexEntry>? _expected;
    private FsIndexEntry? _next;

    private bool Full => _diffs.Count >= limit;

    public IReadOnlyList<FsDifference> Run(CancellationToken ct)
    {
        _expected = expected.Entries.GetEnumerator();
        try
        {
            AdvanceExpected();
            new LayerMerge(baseIndex, written) { Emit = Compare, Problem = Difference, Stop = () => Full }.Run(ct);
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
