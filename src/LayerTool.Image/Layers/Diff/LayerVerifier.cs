using LayerTool.Image.Layers.Index;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.Image.Layers.Diff;

/// <summary>One way two filesystems differ.</summary>
public sealed record FsDifference(LayerPath Path, string What)
{
    public override string ToString() => $"{Path}: {What}";
}

/// <summary>
/// Checks a squash before anything is tagged: the base with the new layer applied must equal the final
/// filesystem, entry by entry (path, type, mode, uid, gid, size, content hash, link target, device
/// numbers, xattrs and hard-link groups; times and owner names are not compared).
/// </summary>
public static class LayerVerifier
{
    /// <summary>
    /// Reads <paramref name="layer"/> (hashing every file's content) and checks that <paramref name="baseIndex"/>
    /// with it applied equals <paramref name="expected"/>, as <see cref="VerifyWritten(FsIndex, IReadOnlyList{WrittenLayerEntry}, FsIndex, CancellationToken, int)"/> does.
    /// </summary>
    /// <returns>The differences (empty when the layer is right), at most <paramref name="limit"/>.</returns>
    public static async Task<IReadOnlyList<FsDifference>> VerifyAsync(FsIndex baseIndex, Stream layer, FsIndex expected,
        CancellationToken cancellationToken, int limit = 100, string? tempDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(baseIndex);
        ArgumentNullException.ThrowIfNull(expected);
        using var log = new WrittenEntryLog(tempDirectory);
        await log.AppendTarAsync(layer, null, cancellationToken, leaveOpen: true).ConfigureAwait(false);
        return new StreamingCheck(baseIndex, log.Read, expected, limit).Run(cancellationToken);
    }

    /// <summary>
    /// The tree-building check: applies <paramref name="layer"/> to an in-memory copy of <paramref name="baseIndex"/>
    /// and compares. Memory grows with the paths; kept as an independent second implementation for tests.
    /// </summary>
    public static async Task<IReadOnlyList<FsDifference>> VerifyInMemoryAsync(FsIndex baseIndex, Stream layer, FsIndex expected,
        CancellationToken cancellationToken, int limit = 100)
    {
        ArgumentNullException.ThrowIfNull(baseIndex);
        var reader = new LayerTarReader(layer, leaveOpen: true);
        await using (reader.ConfigureAwait(false))
        {
            var actual = await baseIndex.ApplyLayerAsync(reader, cancellationToken).ConfigureAwait(false);
            return Compare(expected, actual, limit);
        }
    }

    /// <summary>
    /// The same check as <see cref="VerifyAsync"/> without reading the layer back: uses the entries the tar
    /// writer recorded while writing it (each regular file with the SHA-256 of the bytes it wrote).
    /// </summary>
    /// <returns>The differences (empty when the layer is right), at most <paramref name="limit"/>.</returns>
    public static Task<IReadOnlyList<FsDifference>> VerifyWritten(FsIndex baseIndex, IReadOnlyList<WrittenLayerEntry> written,
        FsIndex expected, CancellationToken cancellationToken, int limit = 100)
    {
        ArgumentNullException.ThrowIfNull(baseIndex);
        ArgumentNullException.ThrowIfNull(written);
        ArgumentNullException.ThrowIfNull(expected);
        return Task.FromResult(new StreamingCheck(baseIndex, () => written, expected, limit).Run(cancellationToken));
    }

    /// <summary>The check of <see cref="VerifyWritten(FsIndex, IReadOnlyList{WrittenLayerEntry}, FsIndex, CancellationToken, int)"/> over a diff's log on disk.</summary>
    internal static IReadOnlyList<FsDifference> VerifyWritten(FsIndex baseIndex, WrittenEntryLog written, FsIndex expected,
        CancellationToken cancellationToken, int limit = 100) =>
        new StreamingCheck(baseIndex, written.Read, expected, limit).Run(cancellationToken);

    /// <summary>Compares two filesystems entry by entry; an empty list means equal.</summary>
    public static IReadOnlyList<FsDifference> Compare(FsIndex expected, FsIndex actual, int limit = 100)
    {
        ArgumentNullException.ThrowIfNull(expected);
        ArgumentNullException.ThrowIfNull(actual);
        var diffs = new List<FsDifference>();
        foreach (var (e, a) in Join(expected, actual))
        {
            if (diffs.Count >= limit) break;
            if (a is null) diffs.Add(new FsDifference(e!.Path, "missing"));
            else if (e is null) diffs.Add(new FsDifference(a.Path, "unexpected"));
            else if (Describe(e, a) is { } what) diffs.Add(new FsDifference(e.Path, what));
        }
        return diffs;
    }

    /// <summary>What differs between two entries of the same path, or null when nothing does.</summary>
    public static string? Describe(FsIndexEntry expected, FsIndexEntry actual)
    {
        ArgumentNullException.ThrowIfNull(expected);
        ArgumentNullException.ThrowIfNull(actual);
        var x = expected.Entry;
        var y = actual.Entry;
        var parts = new List<string>();
        if (x.Type != y.Type) parts.Add($"type {x.Type} != {y.Type}");
        if (x.Mode != y.Mode) parts.Add($"mode {Convert.ToString(x.Mode, 8)} != {Convert.ToString(y.Mode, 8)}");
        if (x.Uid != y.Uid) parts.Add($"uid {x.Uid} != {y.Uid}");
        if (x.Gid != y.Gid) parts.Add($"gid {x.Gid} != {y.Gid}");
        if (x.Size != y.Size) parts.Add($"size {x.Size} != {y.Size}");
        if (!x.LinkTarget.AsSpan().SequenceEqual(y.LinkTarget)) parts.Add($"link '{x.LinkTargetText}' != '{y.LinkTargetText}'");
        if (x.DevMajor != y.DevMajor || x.DevMinor != y.DevMinor) parts.Add($"device {x.DevMajor},{x.DevMinor} != {y.DevMajor},{y.DevMinor}");
        if (!LayerEntry.SameXattrs(x.Xattrs, y.Xattrs)) parts.Add("xattrs differ");
        if (!expected.ContentHash.AsSpan().SequenceEqual(actual.ContentHash)) parts.Add("content differs");
        if (expected.HardLinkOf != actual.HardLinkOf)
            parts.Add($"hard link of '{expected.HardLinkOf?.ToString() ?? "(none)"}' != '{actual.HardLinkOf?.ToString() ?? "(none)"}'");
        return parts.Count == 0 ? null : string.Join("; ", parts);
    }

    /// <summary>Merge-join of two indexes in walk order.</summary>
    internal static IEnumerable<(FsIndexEntry? Left, FsIndexEntry? Right)> Join(FsIndex left, FsIndex right)
    {
        using var l = left.Entries.GetEnumerator();
        using var r = right.Entries.GetEnumerator();
        var hasL = l.MoveNext();
        var hasR = r.MoveNext();
        while (hasL || hasR)
        {
            var c = !hasL ? 1 : !hasR ? -1 : l.Current.Path.CompareTo(r.Current.Path);
            if (c < 0)
            {
                yield return (l.Current, null);
                hasL = l.MoveNext();
            }
            else if (c > 0)
            {
                yield return (null, r.Current);
                hasR = r.MoveNext();
            }
            else
            {
                yield return (l.Current, r.Current);
                hasL = l.MoveNext();
                hasR = r.MoveNext();
            }
        }
    }
}
