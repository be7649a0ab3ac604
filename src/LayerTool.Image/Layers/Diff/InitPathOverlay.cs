using LayerTool.Image.Layers.Index;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.Image.Layers.Diff;

/// <summary>A replacement entry for <see cref="InitPathOverlay"/>: what the image's own layers hold at a masked path.</summary>
/// <param name="Entry">The entry (never a hard link).</param>
/// <param name="Content">A regular file's content (small: these are stub files like /etc/hosts); empty otherwise.</param>
public sealed record OverlayEntry(LayerEntry Entry, byte[] Content);

/// <summary>
/// Corrects a <c>docker export</c> for the engine's init layer. A container's filesystem is the image
/// plus that layer, whose stubs (<c>/.dockerenv</c>, <c>/etc/hosts</c>, <c>/etc/hostname</c>,
/// <c>/etc/resolv.conf</c>, <c>/etc/mtab</c>, <c>/dev/console</c>, <c>/dev/pts</c>, <c>/dev/shm</c>,
/// <c>/proc</c>, <c>/sys</c>, and the directories holding them) hide the image's own entries at those
/// paths. This source drops the export's entries at the masked paths and puts in their place what the
/// image's layers hold there (<see cref="CollectFromLayersAsync"/>), keeping walk order.
/// </summary>
public sealed class InitPathOverlay : ILayerEntrySource
{
    private readonly ILayerEntrySource _export;
    private readonly HashSet<LayerPath> _masked;
    private readonly HashSet<LayerPath> _absent;
    private readonly Queue<OverlayEntry> _replacements;
    private LayerEntry? _pendingExport;
    private bool _exportDone;
    /// <param name="export">The export stream (walk order).</param>
    /// <param name="maskedPaths">The paths the engine provides (<see cref="DefaultPaths"/>).</param>
    /// <param name="replacements">What the image has at those paths; a masked path without a replacement does not exist in the image.</param>
    public InitPathOverlay(ILayerEntrySource export, IEnumerable<LayerPath> maskedPaths, IEnumerable<OverlayEntry> replacements)
    {
        ArgumentNullException.ThrowIfNull(export);
        ArgumentNullException.ThrowIfNull(maskedPaths);
        ArgumentNullException.ThrowIfNull(replacements);
        _export = export;
        _masked = [.. maskedPaths];
        var list = replacements.Where(r => _masked.Contains(r.Entry.Path)).OrderBy(r => r.Entry.Path).ToList();
        _replacements = new Queue<OverlayEntry>(list);
        _absent = [.. _masked.Where(m => list.All(r => r.Entry.Path != m))];
    }

    /// <summary>The paths docker's init layer provides (Docker 20.10 to 29), with their parent directories.</summary>
    public static IReadOnlyList<LayerPath> DefaultPaths { get; } =
        [.. new[] { ".dockerenv", "dev", "dev/console", "dev/pts", "dev/shm", "etc", "etc/hostname", "etc/hosts", "etc/mtab", "etc/resolv.conf", "proc", "sys" }
            .Select(LayerPath.Parse)];

    /// <inheritdoc/>
    public Stream Content { get; private set; } = Stream.Null;

    public async ValueTask<LayerEntry?> ReadNextAsync(CancellationToken cancellationToken)
    {
        Content = Stream.Null;
        while (true)
        {
            if (_pendingExport is null && !_exportDone)
            {
                _pendingExport = await _export.ReadNextAsync(cancellationToken).ConfigureAwait(false);
                if (_pendingExport is null) _exportDone = true;
                else if (Hidden(_pendingExport.Path))
                {
                    _pendingExport = null;
                    continue;
                }
            }
            if (_replacements.Count > 0 && (_pendingExport is null || _replacements.Peek().Entry.Path.CompareTo(_pendingExport.Path) <= 0))
            {
                var r = _replacements.Dequeue();
                if (_pendingExport is not null && _pendingExport.Path == r.Entry.Path) _pendingExport = null;
                Content = new MemoryStream(r.Content, writable: false);
                return r.Entry;
            }
            var e = _pendingExport;
            _pendingExport = null;
            if (e is not null) Content = _export.Content;
            return e;
        }
    }

    /// <summary>A masked path (its replacement, if any, comes from the queue) or anything under a masked path the image lacks.</summary>
    private bool Hidden(LayerPath path)
    {
        if (_masked.Contains(path)) return true;
        foreach (var a in path.Ancestors())
        {
            if (_absent.Contains(a)) return true;
        }
        return false;
    }

    /// <summary>
    /// Reads what an image's layers (bottom first) hold at <paramref name="paths"/>: the replacements for
    /// <see cref="InitPathOverlay"/>. Files over 1 MiB at those paths are refused.
    /// </summary>
    public static async Task<IReadOnlyList<OverlayEntry>> CollectFromLayersAsync(IEnumerable<Func<CancellationToken, Task<Stream>>> layers,
        IEnumerable<LayerPath> paths, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(layers);
        var wanted = new HashSet<LayerPath>(paths);
        var contents = new Dictionary<long, byte[]>();
        FilteredSource? current = null;
        var passed = new HashSet<LayerPath>();
        var builder = new FsIndexBuilder { FileAdded = (node, _, _) => contents[node.Inode] = current!.LastContent };
        foreach (var open in layers)
        {
            var reader = new LayerTarReader(await open(cancellationToken).ConfigureAwait(false));
            await using (reader.ConfigureAwait(false))
            {
                current = new FilteredSource(reader, wanted, passed);
                await builder.ApplyLayerAsync(current, cancellationToken).ConfigureAwait(false);
            }
        }
        var index = builder.Build();
        var result = new List<OverlayEntry>();
        foreach (var (node, _) in index.Nodes())
        {
            if (!wanted.Contains(node.Entry.Path)) continue;
            var content = node.Entry.Type == LayerEntryType.RegularFile && node.Entry.Size > 0 ? contents[node.Inode] : [];
            result.Add(new OverlayEntry(node.Entry, content));
        }
        return result;
    }

    /// <summary>
    /// Passes only the entries that matter for the wanted paths, buffering their (small) content. Small
    /// files next to a wanted path are passed too, so that a wanted path hard-linked to a sibling (say
    /// <c>/etc/hosts</c> to <c>/etc/hosts.orig</c>) still gets its content.
    /// </summary>
    private sealed class FilteredSource(LayerTarReader inner, HashSet<LayerPath> wanted, HashSet<LayerPath> passed) : ILayerEntrySource
    {
        private const int SiblingLimit = 64 << 10;
        private readonly HashSet<LayerPath> _parents = [.. wanted.Select(w => w.Parent)];

        public Stream Content { get; private set; } = Stream.Null;

        public async ValueTask<LayerEntry?> ReadNextAsync(CancellationToken cancellationToken)
        {
            while (await inner.ReadNextAsync(cancellationToken).ConfigureAwait(false) is { } e)
            {
                var p = Whiteouts.Classify(e.Path) switch
                {
                    WhiteoutKind.Whiteout => Whiteouts.Target(e.Path),
                    WhiteoutKind.Opaque => e.Path.Parent,
                    _ => e.Path,
                };
                var needed = wanted.Contains(p) || wanted.Any(w => p.IsAncestorOf(w));
                var sibling = !needed && _parents.Contains(p.Parent);
                if (!needed && !sibling) continue;
                if (sibling && e.Type == LayerEntryType.RegularFile && e.Size > SiblingLimit) continue;
                if (e.Type == LayerEntryType.HardLink && !passed.Contains(e.HardLinkTarget)) continue;
                Content = Stream.Null;
                LastContent = [];
                if (e.Type == LayerEntryType.RegularFile && e.Size > 0)
                {
                    if (e.Size > 1 << 20) throw new ImageFormatException($"'{e.Name}' is too large for an init-layer path ({e.Size} bytes)");
                    var ms = new MemoryStream();
                    await inner.Content.CopyToAsync(ms, cancellationToken).ConfigureAwait(false);
                    LastContent = ms.ToArray();
                    Content = new MemoryStream(LastContent, writable: false);
                }
                if (Whiteouts.Classify(e.Path) == WhiteoutKind.None) passed.Add(e.Path);
                return e;
            }
            return null;
        }

        /// <summary>The content of the last regular file returned (the builder adds its node right after).</summary>
        public byte[] LastContent { get; private set; } = [];
    }
}
