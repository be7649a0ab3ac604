using LayerTool.Image.Layers.Content;
using LayerTool.Image.Layers.Index;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.Image.Layers.Diff;

/// <summary>
/// The heart of squash: writes ONE layer that turns a base filesystem into a final one, by a one-pass
/// merge-join of the final filesystem's stream (walk order, e.g. a <c>docker export</c>) against the
/// base's index.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>A path only in the final filesystem, or whose type, mode, owner, xattrs, size, link target or
/// device numbers differ, goes into the layer. A regular file with equal metadata is compared by content
/// hash: a same-size, same-mtime rewrite with other bytes is caught; a rewrite with identical bytes is
/// not a change. Modification times alone are not a change.</item>
/// <item>A path only in the base gets a whiteout in its parent; a deleted directory gets one whiteout,
/// not one per child. A path whose type changed is simply written (an applier replaces it, a directory
/// recursively).</item>
/// <item>Hard-link groups come out exactly as in the final filesystem: a link whose target did not go
/// into the layer brings the target (and the group's other members) along, target first, names relative.</item>
/// <item>Every entry's parent directories are written before it with the final metadata, as docker
/// does. The order is deterministic, times optionally clamped; the diffID is hashed while writing.</item>
/// </list>
/// Memory stays flat: content is streamed; a file compared by content is held in memory up to
/// <see cref="LayerDiffOptions.SpillThreshold"/> and spills to a temp file above it. The final index
/// (metadata and hashes, no content) is built on the way for <see cref="LayerVerifier"/>.
/// </remarks>
public static class LayerDiff
{
    /// <summary>Writes the layer that turns <paramref name="baseIndex"/> into the filesystem streamed by <paramref name="final"/>.</summary>
    /// <param name="baseIndex">The base filesystem (<see cref="FsIndex.Empty"/> for scratch).</param>
    /// <param name="final">The final filesystem, flattened, in walk order (a <c>docker export</c>,
    /// wrapped in an <see cref="InitPathOverlay"/>).</param>
    /// <param name="output">Receives the uncompressed layer tar.</param>
    /// <param name="options">Settings; null for the defaults.</param>
    /// <param name="cancellationToken">Cancels the work.</param>
    /// <exception cref="ImageFormatException">The stream is not in walk order, holds a name that a layer
    /// cannot carry, or a reopened file differs from what was streamed.</exception>
    public static async Task<LayerDiffResult> WriteAsync(FsIndex baseIndex, ILayerEntrySource final, Stream output,
        LayerDiffOptions? options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(baseIndex);
        ArgumentNullException.ThrowIfNull(final);
        ArgumentNullException.ThrowIfNull(output);
        var run = new Run(baseIndex, output, options ?? new LayerDiffOptions());
        await using (run.ConfigureAwait(false))
            return await run.ExecuteAsync(final, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Same as <see cref="WriteAsync"/>, with the final filesystem given as a stack of layer tars (bottom
    /// first, e.g. from a docker-archive). The stack is merged into an on-disk index with every file's content
    /// spooled once (<see cref="ContentSpool"/>), and that index is the stream the diff reads: memory stays flat
    /// whatever the number of paths. A stack the streaming merge does not compute (see
    /// <see cref="FsIndex.FromLayersOnDiskAsync"/>) is flattened into a temporary tar in memory's way instead.
    /// </summary>
    public static async Task<LayerDiffResult> WriteFromLayersAsync(FsIndex baseIndex, IReadOnlyList<Func<CancellationToken, Task<Stream>>> finalLayers,
        Stream output, LayerDiffOptions? options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(finalLayers);
        options ??= new LayerDiffOptions();
        using (var spool = new ContentSpool(options.TempDirectory))
        {
            var final = await FsIndex.MergeLayersOnDiskAsync(finalLayers, options.TempDirectory, spool, cancellationToken).ConfigureAwait(false);
            if (final?.Store is { } store)
            {
                try
                {
                    using var source = new SpooledFilesystem(store, spool);
                    var reopen = options.ReopenContent ?? source.ReopenAsync;
                    return await WriteAsync(baseIndex, source, output, options with { ReopenContent = reopen }, cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    final.Dispose();
                }
            }
        }

        var temp = TempFile(options.TempDirectory);
        var flat = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete, 65536,
            FileOptions.DeleteOnClose | FileOptions.Asynchronous);
        await using (flat.ConfigureAwait(false))
        {
            await LayerFlattener.FlattenAsync(finalLayers, flat, cancellationToken).ConfigureAwait(false);
            flat.Position = 0;
            var reader = new LayerTarReader(flat, leaveOpen: true);
            await using (reader.ConfigureAwait(false))
            {
                var reopen = options.ReopenContent ?? ContentReopeners.FromTar(
                    _ => Task.FromResult<Stream>(new FileStream(temp, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete)),
                    options.TempDirectory);
                return await WriteAsync(baseIndex, reader, output, options with { ReopenContent = reopen }, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    internal static string TempFile(string? dir) =>
        Path.Combine(dir ?? Path.GetTempPath(), "layertool-" + Guid.NewGuid().ToString("N") + ".tmp");

    private sealed class Run : IAsyncDisposable
    {
        private readonly LayerDiffOptions _options;
        private readonly FsIndex _base;
        private readonly LayerTarWriter _writer;
        private readonly FsIndexStoreWriter _final;
        private readonly WrittenEntryLog _log;
        private readonly IEnumerator<(FsNode Node, LayerPath? FirstLink)> _baseWalk;
        private readonly List<LayerEntry> _dirs = [];
        // What was written: directories by path; the current path by a flag; a path written after the
        // stream passed it (a hard-link group that changed) in a set of its own. Regular files are never
        // kept by path, so memory does not grow with the number of files (FsIndexStore).
        private readonly HashSet<LayerPath> _writtenDirs = [];
        private readonly HashSet<LayerPath> _writtenLate = [];
        private LayerPath? _current;
        private bool _currentWritten;
        private readonly HashSet<long> _emittedGroups = [];
        private readonly HashSet<long> _keptBaseInodes = [];
        private readonly Dictionary<long, List<LayerPath>> _linkMembers = [];
        private readonly Spill _spill;
        private FsNode? _baseNode;
        private long _whiteouts;
        private bool _finished;
        private long _read;

        public Run(FsIndex baseIndex, Stream output, LayerDiffOptions options)
        {
            _base = baseIndex;
            _options = options;
            _final = new FsIndexStoreWriter(null, options.TempDirectory);
            _log = new WrittenEntryLog(options.TempDirectory);
            _writer = options.MeasureOnly ? LayerTarWriter.ForMeasuring() : new LayerTarWriter(output, leaveOpen: true, _log.Append, options.HashWrittenContent, options.HashLayer);
            _baseWalk = baseIndex.Nodes().GetEnumerator();
            _spill = new Spill(options.SpillThreshold, options.TempDirectory);
            AdvanceBase();
        }

        public async Task<LayerDiffResult> ExecuteAsync(ILayerEntrySource final, CancellationToken ct)
        {
            if (_options.Root is { } root)
            {
                var clamp = _options.ClampTime;
                var entry = root with { Path = LayerPath.Root, Type = LayerEntryType.Directory, Size = 0 };
                if (clamp is { } c && entry.ModificationTime > c) entry = entry with { ModificationTime = c };
                await _writer.WriteEntryAsync(entry, null, ct).ConfigureAwait(false);
            }
            LayerPath? previous = null;
            while (await final.ReadNextAsync(ct).ConfigureAwait(false) is { } entry)
            {
                ct.ThrowIfCancellationRequested();
                var path = entry.Path;
                if (path.IsRoot) continue;
                if (previous is not null && previous.CompareTo(path) >= 0)
                    throw new ImageFormatException($"the final filesystem is not in walk order: '{path}' comes after '{previous}'");
                previous = path;
                _current = path;
                _currentWritten = false;

                // Everything the base has before this path is gone from the final filesystem.
                while (_baseNode is not null && _baseNode.Entry.Path.CompareTo(path) < 0)
                    await WhiteoutAsync(_baseNode.Entry.Path, ct).ConfigureAwait(false);

                Trim(path);
                var match = _baseNode is not null && _baseNode.Entry.Path == path ? _baseNode : null;
                if (match is not null)
                {
                    AdvanceBase();
                    // A directory replaced by something else takes its whole subtree with it.
                    if (match.Entry.IsDirectory && !entry.IsDirectory) SkipBaseBelow(path);
                }

                switch (entry.Type)
                {
                    case LayerEntryType.RegularFile:
                        await RegularFileAsync(entry, final.Content, match, (final as IContentHashHint)?.CurrentContentHash, ct).ConfigureAwait(false);
                        break;
                    case LayerEntryType.HardLink:
                        await HardLinkAsync(entry, match, ct).ConfigureAwait(false);
                        break;
                    default:
                        {
                            var node = _final.Add(entry, null);
                            // Non-directories can be hard-linked too (FIFOs, devices, symlinks): same group rule as files.
                            var linked = match is not null && !entry.IsDirectory && _base.LinkedInodes.Contains(match.Inode);
                            if (match is null || !entry.SameMetadata(match.Entry) || (linked && _keptBaseInodes.Contains(match!.Inode)))
                            {
                                await EmitAsync(entry, null, ct).ConfigureAwait(false);
                                if (!entry.IsDirectory) _emittedGroups.Add(node.Group);
                            }
                            else if (linked)
                            {
                                _keptBaseInodes.Add(match.Inode);
                            }
                            break;
                        }
                }
                if (entry.IsDirectory) _dirs.Add(entry);
            }
            while (_baseNode is not null) await WhiteoutAsync(_baseNode.Entry.Path, ct).ConfigureAwait(false);

            await _writer.FinishAsync(ct).ConfigureAwait(false);
            _finished = true;
            return new LayerDiffResult(_writer.DiffId, _writer.BytesWritten, _writer.EntryCount, _whiteouts, _final.Build())
            {
                WrittenLog = _log,
            };
        }

        private async Task RegularFileAsync(LayerEntry entry, Stream content, FsNode? match, byte[]? knownHash, CancellationToken ct)
        {
            var comparable = match is not null
                && match.Entry.SameMetadata(entry)
                && !(_base.LinkedInodes.Contains(match.Inode) && _keptBaseInodes.Contains(match.Inode));
            if (!comparable)
            {
                // Changed or new: stream it straight into the layer. The writer records what it wrote (the
                // content's hash, or the entry's identity when content is not hashed), and that is the final
                // index's too: no second pass over the bytes.
                await EmitAsync(entry, content, ct).ConfigureAwait(false);
                var node = _final.Add(entry, _writer.LastContentHash ?? throw new InvalidOperationException("the tar writer recorded no content hash"));
                _emittedGroups.Add(node.Group);
                Report(entry.Size);
                return;
            }

            // Fast-path hook (IContentHashHint): an untouched base file is equal by its known hash, unread.
            if (knownHash is not null && knownHash.AsSpan().SequenceEqual(match!.Hash))
            {
                _final.Add(entry, knownHash);
                if (_base.LinkedInodes.Contains(match.Inode)) _keptBaseInodes.Add(match.Inode);
                return;
            }
            var hash = await _spill.FillAsync(content, entry, ct).ConfigureAwait(false);
            Report(entry.Size);
            var finalNode = _final.Add(entry, hash);
            if (hash.AsSpan().SequenceEqual(match!.Hash))
            {
                if (_base.LinkedInodes.Contains(match.Inode)) _keptBaseInodes.Add(match.Inode);
                return; // identical bytes: not a change
            }
            var spilled = _spill.OpenRead();
            await using (spilled.ConfigureAwait(false))
                await EmitAsync(entry, spilled, ct, hash).ConfigureAwait(false);
            _emittedGroups.Add(finalNode.Group);
        }

        private async Task HardLinkAsync(LayerEntry entry, FsNode? match, CancellationToken ct)
        {
            var targetPath = entry.HardLinkTarget;
            var target = _final.Find(targetPath)
                ?? throw new ImageFormatException($"hard link '{entry.Name}' points to '{targetPath}', which is not earlier in the stream");
            var node = _final.Add(entry, null);
            if (!_linkMembers.TryGetValue(node.Group, out var members))
                _linkMembers[node.Group] = members = [targetPath];
            members.Add(entry.Path);

            if (_emittedGroups.Contains(node.Group))
            {
                await EmitAsync(entry, null, ct).ConfigureAwait(false);
                return;
            }

            // The target stayed as in the base: the link is unchanged only if the base already had
            // this path in the same hard-link group.
            var baseTarget = _base.FindNode(targetPath);
            if (match is not null && baseTarget is not null && match.Inode == baseTarget.Inode && !match.Entry.IsDirectory)
            {
                _keptBaseInodes.Add(match.Inode);
                return;
            }

            // The group changed: the layer must carry the target and every member of the group.
            await EmitFromIndexAsync(target, ct).ConfigureAwait(false);
            foreach (var member in members)
            {
                if (member == targetPath || member == entry.Path || _writtenLate.Contains(member)) continue;
                await EnsureAncestorsAsync(member, ct).ConfigureAwait(false);
                await EmitRawAsync(_final.Find(member)!.Entry.AsHardLinkTo(targetPath), null, ct).ConfigureAwait(false);
            }
            _emittedGroups.Add(node.Group);
            await EmitAsync(entry, null, ct).ConfigureAwait(false);
        }

        /// <summary>Writes a file the stream has already passed, taking its content from the reopener.</summary>
        private async Task EmitFromIndexAsync(StoredRecord target, CancellationToken ct)
        {
            var entry = target.Entry;
            if (_writtenLate.Contains(entry.Path)) return;
            await EnsureAncestorsAsync(entry.Path, ct).ConfigureAwait(false);
            if (entry.Type != LayerEntryType.RegularFile)
            {
                await EmitRawAsync(entry, null, ct).ConfigureAwait(false);
                return;
            }
            if (_options.MeasureOnly)
            {
                await EmitRawAsync(entry, Stream.Null, ct, target.Hash).ConfigureAwait(false);
                return;
            }
            var reopen = _options.ReopenContent
                ?? throw new ImageFormatException($"'{entry.Name}' gained a hard link but was unchanged, so the layer needs its content again; " +
                                                  "this source cannot re-read it (no content reopener)");
            var stream = await reopen(entry.Path, ct).ConfigureAwait(false);
            var hashing = new HashingStream(stream, leaveOpen: false);
            await using (hashing.ConfigureAwait(false))
            {
                await EmitRawAsync(entry, hashing, ct, target.Hash).ConfigureAwait(false);
                if (!hashing.GetHash().AsSpan().SequenceEqual(target.Hash))
                    throw new ImageFormatException($"the content of '{entry.Name}' changed while the layer was being written");
            }
        }

        private async Task EnsureAncestorsAsync(LayerPath path, CancellationToken ct)
        {
            foreach (var dir in path.Ancestors())
            {
                if (_writtenDirs.Contains(dir)) continue;
                var node = _final.Find(dir) ?? throw new InvalidOperationException($"missing directory '{dir}'");
                await EmitRawAsync(node.Entry, null, ct).ConfigureAwait(false);
            }
        }

        // knownHash: the content's hash when the final index already has it (a file compared with the base, or
        // written again from its reopened bytes); the log must then record that hash too.
        /// <summary>Writes an entry of the current position after its not-yet-written parents.</summary>
        private async Task EmitAsync(LayerEntry entry, Stream? content, CancellationToken ct, byte[]? knownHash = null)
        {
            foreach (var dir in _dirs)
            {
                if (!_writtenDirs.Contains(dir.Path)) await EmitRawAsync(dir, null, ct).ConfigureAwait(false);
            }
            await EmitRawAsync(entry, content, ct, knownHash).ConfigureAwait(false);
        }

        private async Task EmitRawAsync(LayerEntry entry, Stream? content, CancellationToken ct, byte[]? knownHash = null)
        {
            if (Whiteouts.Classify(entry.Path) != WhiteoutKind.None)
                throw new ImageFormatException($"'{entry.Name}' cannot be carried in a layer: its name would read as a whiteout");
            var first = entry.IsDirectory ? _writtenDirs.Add(entry.Path)
                : entry.Path == _current ? !_currentWritten && (_currentWritten = true)
                : _writtenLate.Add(entry.Path);
            if (!first) throw new InvalidOperationException($"'{entry.Name}' would be written twice");
            var clamp = _options.ClampTime;
            if (clamp is { } c && entry.ModificationTime > c) entry = entry with { ModificationTime = c };
            await _writer.WriteEntryAsync(entry, content, ct, knownHash).ConfigureAwait(false);
        }

        private async Task WhiteoutAsync(LayerPath gone, CancellationToken ct)
        {
            Trim(gone);
            AdvanceBase();
            SkipBaseBelow(gone);
            var wh = new LayerEntry
            {
                Path = Whiteouts.For(gone),
                Type = LayerEntryType.RegularFile,
                ModificationTime = _options.ClampTime ?? DateTimeOffset.UnixEpoch,
            };
            foreach (var dir in _dirs)
            {
                if (!_writtenDirs.Contains(dir.Path)) await EmitRawAsync(dir, null, ct).ConfigureAwait(false);
            }
            await _writer.WriteEntryAsync(wh, null, ct).ConfigureAwait(false);
            _whiteouts++;
        }

        /// <summary>Keeps on the directory stack only the ancestors of <paramref name="path"/>.</summary>
        private void Trim(LayerPath path)
        {
            while (_dirs.Count > 0 && !_dirs[^1].Path.IsAncestorOf(path)) _dirs.RemoveAt(_dirs.Count - 1);
        }

        private void SkipBaseBelow(LayerPath path)
        {
            // Descendants follow their directory contiguously in walk order.
            while (_baseNode is not null && path.IsAncestorOf(_baseNode.Entry.Path)) AdvanceBase();
        }

        private void AdvanceBase() => _baseNode = _baseWalk.MoveNext() ? _baseWalk.Current.Node : null;

        private void Report(long bytes)
        {
            _read += bytes;
            _options.Progress?.Report(_read);
        }

        public async ValueTask DisposeAsync()
        {
            _baseWalk.Dispose();
            if (!_finished)
            {
                // On success the final index and the log live on in the result (their temp files are unlinked
                // already, and go with their handles).
                _final.Dispose();
                _log.Dispose();
            }
            await _spill.DisposeAsync().ConfigureAwait(false);
            await _writer.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Holds one file's content while it is compared: in memory up to a threshold, else in a temp file.</summary>
    private sealed class Spill(int threshold, string? tempDirectory) : IAsyncDisposable
    {
        private byte[]? _memory;
        private int _length;
        private FileStream? _file;

        public async Task<byte[]> FillAsync(Stream content, LayerEntry entry, CancellationToken ct)
        {
            await ResetAsync().ConfigureAwait(false);
            var hashing = new HashingStream(content, leaveOpen: true);
            await using (hashing.ConfigureAwait(false))
            {
                if (entry.Size <= threshold)
                {
                    if (_memory is null || _memory.Length < entry.Size)
                        _memory = new byte[Math.Min(threshold, Math.Max(entry.Size, Math.Max(65536, (_memory?.Length ?? 0) * 2)))];
                    var total = 0;
                    int n;
                    while (total < entry.Size && (n = await hashing.ReadAsync(_memory.AsMemory(total, (int)entry.Size - total), ct).ConfigureAwait(false)) > 0)
                        total += n;
                    _length = total;
                }
                else
                {
                    _file = new FileStream(TempFile(tempDirectory), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 81920,
                        FileOptions.DeleteOnClose | FileOptions.Asynchronous);
                    await hashing.CopyToAsync(_file, ct).ConfigureAwait(false);
                    await _file.FlushAsync(ct).ConfigureAwait(false);
                }
                return hashing.GetHash();
            }
        }

        public Stream OpenRead()
        {
            if (_file is not null)
            {
                _file.Position = 0;
                return new NonClosing(_file);
            }
            return new MemoryStream(_memory!, 0, _length, writable: false);
        }

        private async ValueTask ResetAsync()
        {
            if (_file is not null) await _file.DisposeAsync().ConfigureAwait(false);
            _file = null;
            _length = 0;
        }

        public ValueTask DisposeAsync() => ResetAsync();
    }

    /// <summary>A view of a stream whose disposal leaves the inner stream open.</summary>
    private sealed class NonClosing(Stream inner) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => inner.Length;

        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            inner.ReadAsync(buffer, cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            inner.ReadAsync(buffer, offset, count, cancellationToken);

        public override void Flush() { }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
