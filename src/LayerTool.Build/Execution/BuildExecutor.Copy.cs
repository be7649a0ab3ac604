using LayerTool.Image;
using System.Globalization;
using System.Text;
using LayerTool.Build.Cache;
using LayerTool.Build.Context;
using LayerTool.Dockerfile.Instructions;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.Build.Execution;

public sealed partial class BuildExecutor
{
    private const int DirMode = 0x1ED; // 0755

    /// <summary>One thing a COPY/ADD brings in.</summary>
    private abstract record CopyItem;

    private sealed record ContextItem(ContextSource Source, bool Extract) : CopyItem;

    private sealed record UrlItem(string Url, string TempFile, string Name, DateTimeOffset ModifiedTime) : CopyItem;

    /// <summary>A path in another image; a <paramref name="Pattern"/> is expanded once a container of that image exists.</summary>
    private sealed record ImageItem(string Path, bool Pattern = false) : CopyItem;

    private async Task CopyAsync(StageState state, FileInstruction node, CancellationToken ct)
    {
        var isAdd = node is AddInstruction;
        var keyword = isAdd ? "ADD" : "COPY";
        // Flags only BuildKit has: the classic builder refuses them.
        if (node.Chmod is not null) throw Fail(node, "the --chmod option requires BuildKit; the classic builder does not support it");
        if (node.Link) throw Fail(node, "the --link option requires BuildKit; the classic builder does not support it");
        if (node.Excludes.Count > 0) throw Fail(node, "the --exclude option requires BuildKit; the classic builder does not support it");
        if (node is CopyInstruction { Parents: true }) throw Fail(node, "the --parents option requires BuildKit; the classic builder does not support it");
        if (node is AddInstruction add)
        {
            if (add.Checksum is not null) throw Fail(node, "the --checksum option requires BuildKit; the classic builder does not support it");
            if (add.KeepGitDir is not null) throw Fail(node, "the --keep-git-dir option requires BuildKit; the classic builder does not support it");
            if (add.Unpack is not null) throw Fail(node, "the --unpack option requires BuildKit; the classic builder does not support it");
        }
        var from = node is CopyInstruction { From: { } fromWord } ? Expand(state, fromWord) : null;
        var chown = node.Chown is null ? null : Expand(state, node.Chown);
        var lookup = Lookup(state);
        var words = node.Sources.Append(node.Destination).Select(w => _expander.ExpandWord(w, lookup)).ToList();
        var destWord = words[^1];
        var workdir = string.IsNullOrEmpty(state.Config.WorkingDir) ? "/" : state.Config.WorkingDir;
        var destIsDir = destWord.EndsWith('/') || destWord.EndsWith("/.", StringComparison.Ordinal) || destWord == ".";
        var dest = CleanAbsolute(destWord.StartsWith('/') ? destWord : workdir + "/" + destWord);

        var items = new List<CopyItem>();
        var hashes = new List<string>();
        var temps = new List<string>();
        try
        {
            string? fromImage = null;
            if (from is not null)
            {
                fromImage = await ResolveFromImageAsync(node, state, from, ct).ConfigureAwait(false);
                foreach (var src in words[..^1])
                {
                    // A pattern's matches depend only on the image, whose ID is in the key.
                    items.Add(new ImageItem(CleanAbsolute(src.StartsWith('/') ? src : "/" + src), BuildContext.HasWildcards(src)));
                    hashes.Add("image:" + fromImage + ":" + src);
                }
            }
            else
            {
                foreach (var src in words[..^1])
                {
                    if (isAdd && (src.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || src.StartsWith("https://", StringComparison.OrdinalIgnoreCase)))
                    {
                        var item = await DownloadAsync(node, src, ct).ConfigureAwait(false);
                        temps.Add(item.TempFile);
                        items.Add(item);
                        using var f = File.OpenRead(item.TempFile);
                        hashes.Add("url:" + src + ":" + Convert.ToHexStringLower(await System.Security.Cryptography.SHA256.HashDataAsync(f, ct).ConfigureAwait(false)));
                        continue;
                    }
                    IReadOnlyList<ContextSource> resolved;
                    try
                    {
                        resolved = _context.Resolve(src);
                    }
                    catch (BuildException e)
                    {
                        throw Fail(node, $"{keyword} failed: {e.Message}", e);
                    }
                    foreach (var r in resolved)
                    {
                        var extract = isAdd && !r.IsDirectory && AddArchive.IsArchive(r.FullPath);
                        items.Add(new ContextItem(r, extract));
                        hashes.Add((r.IsDirectory ? "dir:" : "file:") + r.ContextPath + ":" + _context.Hash(r));
                    }
                }
            }
            // As docker: an error only when no source at all gave anything (a pattern may match nothing).
            if (items.Count == 0) throw Fail(node, $"{keyword} failed: no source files were specified");
            if (items.Count > 1 && !destIsDir)
                throw Fail(node, $"When using {keyword} with more than one source file, the destination must be a directory and end with a /");

            var text = $"{keyword} {(from is null ? "" : "--from=" + from + " ")}{(chown is null ? "" : "--chown=" + chown + " ")}{string.Join(' ', words[..^1])} {dest}{(destIsDir ? "/" : "")}";
            var key = StepKey(state, text, string.Join('\n', hashes));
            if (await TryCacheAsync(state, key, state.Config, ct).ConfigureAwait(false)) return;
            var summary = BuildCache.Key([.. hashes])[..16];
            var nop = state.Shell.Concat(["#(nop) ", $"{keyword} {(items.Count > 1 ? "multi" : items[0] is ContextItem { Source.IsDirectory: true } ? "dir" : "file")}:{summary} in {dest}{(destIsDir ? "/" : "")} "]).ToList();
            // Docker's classic builder copies into the step's layer without mounting the image's volumes: a tmpfs
            // declared on each volume path (never mounted, the container never starts) keeps the engine from
            // creating volumes there, so the archive endpoint writes into the container's own filesystem.
            var volumes = (state.Config.Volumes ?? []).Where(v => v.StartsWith('/')).Select(CleanAbsolute).Distinct(StringComparer.Ordinal).ToList();
            await CommitStepAsync(state, node, key, state.Config, nop,
                id => CopyIntoAsync(node, id, fromImage, items, dest, destIsDir, chown, ct), volumes, ct).ConfigureAwait(false);
        }
        finally
        {
            foreach (var t in temps) File.Delete(t);
        }
    }

    private async Task<string> ResolveFromImageAsync(Instruction node, StageState state, string from, CancellationToken ct)
    {
        var stage = FindStage(from, state.Stage.Index);
        if (stage is not null && _finishedStages.TryGetValue(stage.Index, out var prior))
            return prior.ImageId ?? throw Fail(node, $"stage {from} has no image (it is FROM scratch and empty)");
        if (int.TryParse(from, NumberStyles.None, CultureInfo.InvariantCulture, out _))
            throw Fail(node, $"invalid from flag value {from}: refers to current or future build stage");
        var reference = from.Contains('@', StringComparison.Ordinal) || HasTag(from) ? from : from + ":latest";
        var image = await _engine.InspectImageAsync(reference, ct).ConfigureAwait(false);
        if (image is null)
        {
            await _engine.PullImageAsync(reference, null, ct).ConfigureAwait(false);
            image = await _engine.InspectImageAsync(reference, ct).ConfigureAwait(false) ?? throw Fail(node, $"cannot find image {reference}");
        }
        return image.Id;
    }

    private async Task<UrlItem> DownloadAsync(Instruction node, string url, CancellationToken ct)
    {
        var http = _http ?? SharedHttp.Value;
        var temp = Path.GetTempFileName();
        try
        {
            using var response = await http.GetAsync(new Uri(url), HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
                throw Fail(node, $"failed to GET {url} with status {(int)response.StatusCode} {response.ReasonPhrase}");
            using (var file = File.Create(temp))
                await response.Content.CopyToAsync(file, ct).ConfigureAwait(false);
            var name = Uri.UnescapeDataString(new Uri(url).AbsolutePath.TrimEnd('/').Split('/')[^1]);
            if (name.Length == 0) throw Fail(node, $"cannot determine filename from url: {url}");
            var mtime = response.Content.Headers.LastModified ?? DateTimeOffset.UnixEpoch;
            return new UrlItem(url, temp, name, mtime);
        }
        catch (HttpRequestException e)
        {
            File.Delete(temp);
            throw Fail(node, $"failed to download {url}: {e.Message}", e);
        }
    }

    private static readonly Lazy<HttpClient> SharedHttp = new(() => new HttpClient());

    /// <summary>Puts the items into the container: one tar for files and directories, then one upload per extracted archive.</summary>
    private async Task CopyIntoAsync(Instruction node, string containerId, string? fromImage, IReadOnlyList<CopyItem> items, string dest, bool destIsDir,
        string? chown, CancellationToken ct)
    {
        var (uid, gid) = chown is null ? (0, 0) : await ResolveChownAsync(node, containerId, chown, ct).ConfigureAwait(false);
        var chowned = chown is not null;
        var exists = new Dictionary<string, bool>(StringComparer.Ordinal);
        async Task<bool> IsDirAsync(string path)
        {
            if (exists.TryGetValue(path, out var known)) return known;
            var stat = await _engine.StatPathAsync(containerId, path, ct).ConfigureAwait(false);
            return exists[path] = stat is { IsDirectory: true };
        }

        // As docker, the destination is resolved in the container, following symlinks (absolute ones from the
        // container's root): COPY to a link to a directory writes into that directory and keeps the link.
        dest = await ResolveInContainerAsync(node, containerId, dest, ct).ConfigureAwait(false);

        // Missing directories, in creation order, with the owner docker gives them: the parents of a copied FILE
        // get the --chown owner (moby's copyFile: MkdirAllAndChownNew(dir, identity)); the parents of a copied
        // directory or extracted archive are root's, and a new destination directory of a copy gets the --chown
        // owner (CopyWithTar makes it as root, fixPermissions then chowns it), of an extraction root's.
        var newDirs = new List<(string Path, int Uid, int Gid)>();
        var created = new HashSet<string>(StringComparer.Ordinal);
        async Task NeedDirAsync(string dir, (int Uid, int Gid) parents, (int Uid, int Gid) self)
        {
            var chain = new List<string>();
            for (var d = dir; d != "/" && !created.Contains(d); d = ParentOf(d))
            {
                if (await IsDirAsync(d).ConfigureAwait(false)) break;
                chain.Add(d);
            }
            chain.Reverse();
            foreach (var d in chain)
            {
                var owner = d == dir ? self : parents;
                newDirs.Add((d, owner.Uid, owner.Gid));
                created.Add(d);
                exists[d] = true;
            }
        }
        var root = (0, 0);
        var identity = (uid, gid);

        string? fromContainer = null;
        var temp = Path.GetTempFileName();
        try
        {
            if (items.Any(i => i is ImageItem { Pattern: true }))
            {
                fromContainer = await CreateContainerAsync(fromImage!, new ContainerConfig { Cmd = ["#(nop) copy source"] }, ct).ConfigureAwait(false);
                var expanded = new List<CopyItem>();
                foreach (var item in items)
                {
                    if (item is ImageItem { Pattern: true } pattern) expanded.AddRange((await MatchImagePathsAsync(fromContainer, pattern.Path, ct).ConfigureAwait(false)).Select(p => new ImageItem(p)));
                    else expanded.Add(item);
                }
                if (expanded.Count == 0) throw Fail(node, "COPY failed: no source files were specified");
                if (expanded.Count > 1 && !destIsDir)
                    throw Fail(node, "When using COPY with more than one source file, the destination must be a directory and end with a /");
                items = expanded;
            }

            // Where each item goes.
            var targets = new List<(CopyItem Item, string Target, bool AsDir)>();
            foreach (var item in items)
            {
                switch (item)
                {
                    case ContextItem { Source.IsDirectory: true }:
                        await NeedDirAsync(dest, root, identity).ConfigureAwait(false);
                        targets.Add((item, dest, true));
                        break;
                    case ContextItem { Extract: true }:
                        // moby: UntarPath, without the --chown identity.
                        await NeedDirAsync(dest, root, root).ConfigureAwait(false);
                        targets.Add((item, dest, true));
                        break;
                    case ContextItem c:
                        targets.Add((item, await FileTargetAsync(NameOf(c.Source)).ConfigureAwait(false), false));
                        break;
                    case UrlItem u:
                        targets.Add((item, await FileTargetAsync(u.Name).ConfigureAwait(false), false));
                        break;
                    case ImageItem img:
                        fromContainer ??= await CreateContainerAsync(fromImage!, new ContainerConfig { Cmd = ["#(nop) copy source"] }, ct).ConfigureAwait(false);
                        var stat = await _engine.StatPathAsync(fromContainer, img.Path, ct).ConfigureAwait(false)
                            ?? throw Fail(node, $"COPY failed: stat {img.Path}: file does not exist");
                        // As docker, a symlink is followed inside the image (the engine's stat gives the fully
                        // resolved target) and what it points to is copied, under the link's own name.
                        var source = img;
                        if (stat.IsSymlink && stat.LinkTarget is { } resolved)
                        {
                            source = new ImageItem(resolved);
                            stat = await _engine.StatPathAsync(fromContainer, resolved, ct).ConfigureAwait(false)
                                ?? throw Fail(node, $"COPY failed: stat {img.Path}: file does not exist");
                        }
                        if (stat.IsDirectory)
                        {
                            await NeedDirAsync(dest, root, identity).ConfigureAwait(false);
                            targets.Add((source, dest, true));
                        }
                        else targets.Add((source, await FileTargetAsync(img.Path.Split('/')[^1]).ConfigureAwait(false), false));
                        break;
                }
            }

            async Task<string> FileTargetAsync(string name)
            {
                var target = destIsDir || await IsDirAsync(dest).ConfigureAwait(false) ? (dest == "/" ? "/" + name : dest + "/" + name) : dest;
                await NeedDirAsync(ParentOf(target), identity, identity).ConfigureAwait(false);
                return target;
            }

            using (var file = File.Create(temp))
            using (var tar = new LayerTarWriter(file, leaveOpen: true, hashLayer: false))
            {
                foreach (var (d, dirUid, dirGid) in newDirs)
                    await tar.WriteEntryAsync(NewDirectory(d, dirUid, dirGid), null, ct).ConfigureAwait(false);
                foreach (var (item, target, asDir) in targets)
                {
                    switch (item)
                    {
                        case ContextItem { Extract: true }:
                            break;
                        case ContextItem c:
                            foreach (var e in _context.Entries(c.Source))
                            {
                                if (asDir && e.RelativePath.Length == 0) continue;
                                var name = (asDir ? JoinPath(target, e.RelativePath) : target).TrimStart('/');
                                await WriteContextEntryAsync(tar, e, name, uid, gid, ct).ConfigureAwait(false);
                            }
                            break;
                        case UrlItem u:
                            using (var data = File.OpenRead(u.TempFile))
                            {
                                var entry = new LayerEntry
                                {
                                    Path = TarPath(target), Type = LayerEntryType.RegularFile, Mode = 0x180, Uid = uid, Gid = gid,
                                    ModificationTime = u.ModifiedTime, Size = data.Length,
                                };
                                await tar.WriteEntryAsync(entry, data, ct).ConfigureAwait(false);
                            }
                            break;
                        case ImageItem img:
                            await CopyFromImageAsync(tar, fromContainer!, img.Path, target, asDir, chowned ? identity : null, ct).ConfigureAwait(false);
                            break;
                    }
                }
                await tar.FinishAsync(ct).ConfigureAwait(false);
            }
            using (var upload = File.OpenRead(temp))
                await _engine.PutArchiveAsync(containerId, "/", upload, ct).ConfigureAwait(false);

            foreach (var (item, target, _) in targets)
            {
                if (item is ContextItem { Extract: true } archive)
                    await ExtractArchiveAsync(containerId, archive.Source.FullPath, target, ct).ConfigureAwait(false);
            }
        }
        finally
        {
            File.Delete(temp);
            if (fromContainer is not null) await RemoveContainerAsync(fromContainer, CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The paths of the image (through a container of it) that a COPY --from pattern matches, as docker's
    /// classic builder finds them: every path of the image, relative to its root, tested with Go's
    /// filepath.Match (a <c>*</c> never crosses a <c>/</c>), in walk order. Only the directory above the first
    /// component with a wildcard is read.
    /// </summary>
    private async Task<List<string>> MatchImagePathsAsync(string containerId, string pattern, CancellationToken ct)
    {
        var relPattern = pattern.TrimStart('/');
        var parts = relPattern.Split('/');
        var fixedCount = Array.FindIndex(parts, BuildContext.HasWildcards);
        var prefixRel = string.Join('/', parts[..fixedCount]);
        var prefix = "/" + prefixRel;
        var matches = new List<string>();
        if (await _engine.StatPathAsync(containerId, prefix, ct).ConfigureAwait(false) is not { IsDirectory: true }) return matches;
        using var stream = await _engine.GetArchiveAsync(containerId, prefix, ct).ConfigureAwait(false);
        var reader = new LayerTarReader(stream, leaveOpen: true, source: "the engine's archive of " + prefix, namesAsWritten: true);
        await using var readerScope = reader.ConfigureAwait(false);
        string? root = null;
        while (await reader.ReadNextAsync(ct).ConfigureAwait(false) is not null)
        {
            // Names are compared as the engine wrote them; one that is not UTF-8 shows as \xNN (it cannot be asked
            // for by name through the engine's API, see below).
            var name = LayerPath.Display(reader.NameAsWritten.Span).Trim('/');
            if (root is null)
            {
                root = name; // the directory itself: "out" for /out, "" for /
                continue;
            }
            if (root.Length > 0 && !name.StartsWith(root + "/", StringComparison.Ordinal)) continue;
            var sub = root.Length == 0 ? name : name[(root.Length + 1)..];
            var rel = prefixRel.Length == 0 ? sub : prefixRel + "/" + sub;
            // The engine's init layer puts /.dockerenv in every container; it is no part of the image.
            if (rel == ".dockerenv") continue;
            if (!GoGlob.IsMatch(relPattern, rel)) continue;
            if (!System.Text.Unicode.Utf8.IsValid(reader.NameAsWritten.Span))
                throw new BuildException($"COPY --from: the pattern {pattern} matches /{rel}, whose name is not UTF-8, which the engine's archive API cannot name; copy a directory above it instead");
            matches.Add("/" + rel);
        }
        // Go's Walk order: by name within each directory.
        matches.Sort((a, b) => string.CompareOrdinal(a.Replace('/', '\0'), b.Replace('/', '\0')));
        return matches;
    }

    private static string NameOf(ContextSource source) =>
        source.ContextPath.Length == 0 ? Path.GetFileName(source.FullPath) : source.ContextPath.Split('/')[^1];

    private static string JoinPath(string dir, string rel) => rel.Length == 0 ? dir : dir == "/" ? "/" + rel : dir + "/" + rel;

    private static string ParentOf(string path)
    {
        var i = path.TrimEnd('/').LastIndexOf('/');
        return i <= 0 ? "/" : path[..i];
    }

    /// <summary>
    /// The mode a non-directory keeps after docker's builder chowns it: the kernel's chown clears setuid, and
    /// setgid when the group may execute (a setgid without group-execute is a locking mark, and stays). Docker's
    /// classic builder chowns every file it copies from the context (to root, or to --chown), and the files of a
    /// COPY --from only with --chown. BuildKit chowns nothing this way and keeps both bits.
    /// </summary>
    internal static UnixFileMode AfterChown(UnixFileMode mode)
    {
        mode &= ~UnixFileMode.SetUser;
        if ((mode & UnixFileMode.GroupExecute) != 0) mode &= ~UnixFileMode.SetGroup;
        return mode;
    }

    /// <summary>A path of the step's tar (relative to the container's root) from an absolute or relative path.</summary>
    private static LayerPath TarPath(string path) => LayerPath.Parse(path.TrimStart('/'));

    private static LayerEntry NewDirectory(string path, int uid, int gid) => new()
    {
        Path = TarPath(path), Type = LayerEntryType.Directory, Mode = DirMode, Uid = uid, Gid = gid, ModificationTime = DateTimeOffset.UtcNow,
    };

    private static async Task WriteContextEntryAsync(LayerTarWriter tar, ContextEntry e, string name, int uid, int gid, CancellationToken ct)
    {
        var entry = new LayerEntry { Path = TarPath(name), Type = LayerEntryType.Directory, Mode = (int)e.Mode, Uid = uid, Gid = gid, ModificationTime = e.ModifiedTime };
        switch (e.Kind)
        {
            case EntryKind.Directory:
                await tar.WriteEntryAsync(entry, null, ct).ConfigureAwait(false);
                break;
            case EntryKind.Symlink:
                await tar.WriteEntryAsync(entry with { Type = LayerEntryType.Symlink, LinkTarget = Encoding.UTF8.GetBytes(e.LinkTarget!) }, null, ct).ConfigureAwait(false);
                break;
            default:
                using (var data = File.OpenRead(e.FullPath))
                {
                    var file = entry with { Type = LayerEntryType.RegularFile, Mode = (int)AfterChown(e.Mode), Size = data.Length };
                    await tar.WriteEntryAsync(file, data, ct).ConfigureAwait(false);
                }
                break;
        }
    }

    /// <summary>
    /// Streams a path out of another image's container into the step's tar, renamed to the target. Owners and
    /// modes are kept, as docker keeps them (numeric ids, whether or not the image names them); with --chown
    /// every entry gets that owner and loses what a chown clears. Names and link targets are kept byte for byte
    /// (a name need not be UTF-8).
    /// </summary>
    private async Task CopyFromImageAsync(LayerTarWriter tar, string fromContainer, string path, string target, bool asDir, (int Uid, int Gid)? chown, CancellationToken ct)
    {
        using var stream = await _engine.GetArchiveAsync(fromContainer, path, ct).ConfigureAwait(false);
        var reader = new LayerTarReader(stream, leaveOpen: true, source: "the engine's archive of " + path, namesAsWritten: true);
        await using var readerScope = reader.ConfigureAwait(false);
        var targetBytes = Encoding.UTF8.GetBytes(target.TrimStart('/'));
        // The engine names every entry below the path's own name ("dir", "dir/a"): the first component goes, the
        // rest is put under the target (a directory) or is the target (a file).
        LayerPath? Map(ReadOnlySpan<byte> name)
        {
            var n = name.TrimEnd((byte)'/');
            var slash = n.IndexOf((byte)'/');
            var rel = slash < 0 ? [] : n[(slash + 1)..];
            if (!asDir) return LayerPath.FromBytes(targetBytes);
            if (rel.IsEmpty) return null;
            return LayerPath.FromBytes(targetBytes.Length == 0 ? rel : [.. targetBytes, (byte)'/', .. rel]);
        }
        while (await reader.ReadNextAsync(ct).ConfigureAwait(false) is { } entry)
        {
            if (Map(reader.NameAsWritten.Span) is not { } mapped) continue;
            var copy = entry with
            {
                Path = mapped,
                Mode = chown is null || entry.Type == LayerEntryType.Directory ? entry.Mode : (int)AfterChown((UnixFileMode)entry.Mode),
                Uid = chown?.Uid ?? entry.Uid,
                Gid = chown?.Gid ?? entry.Gid,
                // As the classic builder's own copy: numeric owners only (it never writes the image's names).
                UserName = "",
                GroupName = "",
            };
            if (entry.Type == LayerEntryType.HardLink && Map(entry.LinkTarget) is { } linked) copy = copy with { LinkTarget = linked.Bytes.ToArray() };
            await tar.WriteEntryAsync(copy, entry.Type == LayerEntryType.RegularFile ? reader.Content : null, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// <paramref name="path"/> with every existing component resolved in the container: a symlink is replaced by
    /// the engine's fully resolved target (scoped to the container's root). The first missing component ends the
    /// walk: the rest is to be created.
    /// </summary>
    private async Task<string> ResolveInContainerAsync(Instruction node, string containerId, string path, CancellationToken ct)
    {
        var done = "/";
        var pending = new Queue<string>(path.Split('/', StringSplitOptions.RemoveEmptyEntries));
        var hops = 0;
        while (pending.Count > 0)
        {
            var candidate = JoinPath(done, pending.Dequeue());
            var stat = await _engine.StatPathAsync(containerId, candidate, ct).ConfigureAwait(false);
            if (stat is null) return pending.Aggregate(candidate, JoinPath);
            if (stat.IsSymlink && stat.LinkTarget is { } target)
            {
                if (++hops > 40) throw Fail(node, $"too many levels of symbolic links: {path}");
                done = CleanAbsolute(target.StartsWith('/') ? target : JoinPath(ParentOf(candidate), target));
                continue;
            }
            done = candidate;
        }
        return done;
    }

    /// <summary>
    /// Extracts a local archive of ADD into <paramref name="directory"/> (which exists). Entries that go through a
    /// symlink, of the archive or one the image has under the directory, are first renamed to where an extraction
    /// chrooted at the directory puts them (the engine's endpoint would resolve them from the container's root); an
    /// archive without such entries goes up as it is, compressed, and the engine decompresses it.
    /// </summary>
    private async Task ExtractArchiveAsync(string containerId, string archive, string directory, CancellationToken ct)
    {
        var confined = Path.GetTempFileName();
        try
        {
            bool rewritten;
            using (var output = File.Create(confined))
                rewritten = await AddArchive.TryConfineAsync(archive, directory, output, ct, (path, token) => ImagePathAsync(containerId, JoinPath(directory, path), token)).ConfigureAwait(false);
            using var data = File.OpenRead(rewritten ? confined : archive);
            await _engine.PutArchiveAsync(containerId, rewritten ? "/" : directory, data, ct).ConfigureAwait(false);
        }
        finally
        {
            File.Delete(confined);
        }
    }

    /// <summary>What the container has at <paramref name="path"/> (its parents resolved by the engine), a symlink with its
    /// target as written in it.</summary>
    private async Task<AddArchive.ImagePath> ImagePathAsync(string containerId, string path, CancellationToken ct)
    {
        var stat = await _engine.StatPathAsync(containerId, path, ct).ConfigureAwait(false);
        if (stat is null) return AddArchive.ImagePath.Missing;
        if (!stat.IsSymlink) return stat.IsDirectory ? AddArchive.ImagePath.Directory : new AddArchive.ImagePath(true, false, null);
        // The stat's target is resolved from the container's root; the extraction follows the link as written.
        using var stream = await _engine.GetArchiveAsync(containerId, path, ct).ConfigureAwait(false);
        var reader = new LayerTarReader(stream, leaveOpen: true, source: "the engine's archive of " + path, namesAsWritten: true);
        await using var readerScope = reader.ConfigureAwait(false);
        var entry = await reader.ReadNextAsync(ct).ConfigureAwait(false);
        return entry is { Type: LayerEntryType.Symlink } ? new AddArchive.ImagePath(true, false, Encoding.UTF8.GetString(entry.LinkTarget)) : new AddArchive.ImagePath(true, false, null);
    }

    /// <summary>Resolves <c>user[:group]</c>: numbers as they are, names in the image's /etc/passwd and /etc/group.</summary>
    private async Task<(int Uid, int Gid)> ResolveChownAsync(Instruction node, string containerId, string chown, CancellationToken ct)
    {
        var colon = chown.IndexOf(':', StringComparison.Ordinal);
        var user = colon < 0 ? chown : chown[..colon];
        var group = colon < 0 ? user : chown[(colon + 1)..];
        int uid, gid;
        if (!int.TryParse(user, NumberStyles.None, CultureInfo.InvariantCulture, out uid))
        {
            var passwd = await ReadImageFileAsync(containerId, "/etc/passwd", ct).ConfigureAwait(false)
                ?? throw Fail(node, $"unable to convert uid/gid chown string to host mapping: can't find uid for user {user}: no such file or directory");
            uid = LookupId(passwd, user) ?? throw Fail(node, $"unable to convert uid/gid chown string to host mapping: can't find uid for user {user}: no such user: {user}");
        }
        if (!int.TryParse(group, NumberStyles.None, CultureInfo.InvariantCulture, out gid))
        {
            var groups = await ReadImageFileAsync(containerId, "/etc/group", ct).ConfigureAwait(false)
                ?? throw Fail(node, $"unable to convert uid/gid chown string to host mapping: can't find gid for group {group}: no such file or directory");
            gid = LookupId(groups, group) ?? throw Fail(node, $"unable to convert uid/gid chown string to host mapping: can't find gid for group {group}: no such group: {group}");
        }
        return (uid, gid);
    }

    private static int? LookupId(string file, string name)
    {
        foreach (var line in file.Split('\n'))
        {
            var f = line.Split(':');
            if (f.Length >= 3 && f[0] == name && int.TryParse(f[2], NumberStyles.None, CultureInfo.InvariantCulture, out var id)) return id;
        }
        return null;
    }

    private async Task<string?> ReadImageFileAsync(string containerId, string path, CancellationToken ct)
    {
        if (await _engine.StatPathAsync(containerId, path, ct).ConfigureAwait(false) is null) return null;
        using var stream = await _engine.GetArchiveAsync(containerId, path, ct).ConfigureAwait(false);
        var reader = new LayerTarReader(stream, leaveOpen: true, source: "the engine's archive of " + path, namesAsWritten: true);
        await using var readerScope = reader.ConfigureAwait(false);
        if (await reader.ReadNextAsync(ct).ConfigureAwait(false) is not { Type: LayerEntryType.RegularFile }) return null;
        using var text = new StreamReader(reader.Content);
        return await text.ReadToEndAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Creates <paramref name="path"/> and missing parents (0755, owned by uid:gid) when it does not exist.</summary>
    private async Task EnsureDirectoriesAsync(string containerId, string path, int uid, int gid, CancellationToken ct)
    {
        var missing = new List<string>();
        for (var d = path; d != "/"; d = ParentOf(d))
        {
            var stat = await _engine.StatPathAsync(containerId, d, ct).ConfigureAwait(false);
            if (stat is not null) break;
            missing.Add(d);
        }
        if (missing.Count == 0) return;
        missing.Reverse();
        using var buffer = new MemoryStream();
        using (var tar = new LayerTarWriter(buffer, leaveOpen: true, hashLayer: false))
        {
            foreach (var d in missing)
                await tar.WriteEntryAsync(NewDirectory(d, uid, gid), null, ct).ConfigureAwait(false);
            await tar.FinishAsync(ct).ConfigureAwait(false);
        }
        buffer.Position = 0;
        await _engine.PutArchiveAsync(containerId, "/", buffer, ct).ConfigureAwait(false);
    }
}
