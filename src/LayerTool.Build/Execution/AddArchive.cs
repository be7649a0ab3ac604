using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using ICSharpCode.SharpZipLib.BZip2;
using LayerTool.Image;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.Build.Execution;

/// <summary>How a local ADD source is compressed, told by its first bytes (never by its name).</summary>
public enum ArchiveCompression
{
    None,
    Gzip,
    Bzip2,
    Xz,
}

/// <summary>
/// The local-archive rules of ADD, as docker's classic builder applies them:
/// <list type="bullet">
/// <item>A file is extracted only when, once decompressed (gzip, bzip2, xz, by magic bytes), its first tar header
/// reads (moby's <c>isArchivePath</c>: <c>tar.NewReader(DecompressStream(f)).Next()</c> without error). Anything
/// else — plain text under a <c>.tar.gz</c> name, a gzip of a non-tar, a zip, an empty tar of zero blocks — is
/// copied as a plain file.</item>
/// <item>The archive is extracted in a chroot of the destination, so a symlink in the archive (<c>link -> /</c>)
/// followed by <c>link/etc/passwd</c> lands at <c>DEST/etc/passwd</c>, never outside DEST; so does a symlink the
/// image already has under DEST (<c>DEST/link -> /</c>, and the archive holds <c>link/etc/passwd</c>). The engine's
/// archive endpoint resolves links against the container's root instead, so before upload every entry whose path
/// (or hard-link target) goes through a symlink, of the archive or of the image, is renamed to the confined,
/// resolved path.</item>
/// </list>
/// Names and link targets of the archive are kept byte for byte, UTF-8 or not (the resolver holds them as byte
/// strings: one char per byte). The image is asked about its paths as text, through the engine's API, which cannot
/// name a path that is not UTF-8: such a path of the image reads as missing.
/// </summary>
public static class AddArchive
{
    /// <summary>What the image has at a path under the destination before the extraction.</summary>
    /// <param name="Exists">Anything is there.</param>
    /// <param name="IsDirectory">A directory (not a symlink to one).</param>
    /// <param name="LinkTarget">A symlink's target as written in it; null for anything else.</param>
    public sealed record ImagePath(bool Exists, bool IsDirectory, string? LinkTarget)
    {
        public static ImagePath Missing { get; } = new(false, false, null);

        public static ImagePath Directory { get; } = new(true, true, null);
    }

    /// <summary>Looks up a path of the image, relative to the destination (clean, no leading slash), whose parents
    /// are directories of the image (never symlinks: the resolver follows those itself).</summary>
    public delegate Task<ImagePath> ImageLookup(string relativePath, CancellationToken cancellationToken);

    private const int BlockSize = 512;
    private const int MaxLinkHops = 255;

    /// <summary>The compression of the stream's first bytes.</summary>
    public static ArchiveCompression DetectCompression(ReadOnlySpan<byte> head)
    {
        if (head.Length >= 3 && head[0] == 0x1f && head[1] == 0x8b && head[2] == 0x08) return ArchiveCompression.Gzip;
        if (head.Length >= 3 && head[0] == 'B' && head[1] == 'Z' && head[2] == 'h') return ArchiveCompression.Bzip2;
        if (head.Length >= 6 && head[0] == 0xFD && head[1] == '7' && head[2] == 'z' && head[3] == 'X' && head[4] == 'Z' && head[5] == 0) return ArchiveCompression.Xz;
        return ArchiveCompression.None;
    }

    /// <summary>True when ADD extracts this file (see the class remarks).</summary>
    public static bool IsArchive(string path)
    {
        try
        {
            using var stream = OpenDecompressed(path);
            var block = new byte[BlockSize];
            if (stream.ReadAtLeast(block, BlockSize, throwOnEndOfStream: false) < BlockSize) return false;
            if (block.AsSpan().IndexOfAnyExcept((byte)0) < 0)
            {
                // Go: a zero block followed by another is the end (io.EOF), by anything else a bad header.
                return false;
            }
            return HeaderChecksumMatches(block);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or ICSharpCode.SharpZipLib.SharpZipBaseException)
        {
            // A stream that does not decompress is no archive: docker copies such a file as it is.
            return false;
        }
    }

    /// <summary>
    /// Go's archive/tar header check: the checksum field (octal, spaces/NULs trimmed) equals the unsigned or the
    /// signed byte sum of the block with that field read as spaces.
    /// </summary>
    internal static bool HeaderChecksumMatches(ReadOnlySpan<byte> block)
    {
        var field = block.Slice(148, 8);
        var text = System.Text.Encoding.ASCII.GetString(field).Trim(' ', '\0');
        if (text.Length == 0) return false;
        long expected = 0;
        foreach (var c in text)
        {
            if (c is < '0' or > '7') return false;
            expected = expected * 8 + (c - '0');
        }
        long unsigned = 0, signed = 0;
        for (var i = 0; i < BlockSize; i++)
        {
            var b = i is >= 148 and < 156 ? (byte)' ' : block[i];
            unsigned += b;
            signed += (sbyte)b;
        }
        return expected == unsigned || expected == signed;
    }

    /// <summary>
    /// The file's bytes decompressed. xz goes through the <c>xz</c> program, as docker's daemon does it; gzip and
    /// bzip2 are read in-process.
    /// </summary>
    public static Stream OpenDecompressed(string path)
    {
        var file = File.OpenRead(path);
        try
        {
            Span<byte> head = stackalloc byte[6];
            var n = file.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            file.Position = 0;
            switch (DetectCompression(head[..n]))
            {
                case ArchiveCompression.Gzip:
                    return new GZipStream(file, CompressionMode.Decompress);
                case ArchiveCompression.Bzip2:
                    return new BZip2InputStream(file);
                case ArchiveCompression.Xz:
                    file.Dispose();
                    return XzProcessStream.Start(path);
                default:
                    return file;
            }
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Writes <paramref name="archive"/> (decompressed) to <paramref name="output"/> as a plain tar to extract at the
    /// container's root, whose entries sit under <paramref name="destination"/> and no longer go through symlinks of
    /// the archive: each path is resolved as an extraction chrooted at the destination would resolve it. The engine
    /// also refuses, at the destination, names, hard links and relative symlinks that climb above it, which a chroot
    /// simply stops at its root; from the container's root those pass. Returns false, writing nothing, when no entry
    /// needs any of this (then the original goes up as it is, at the destination). <paramref name="image"/> tells what
    /// the image has under the destination (its symlinks are followed as the archive's are); null: nothing.
    /// </summary>
    public static async Task<bool> TryConfineAsync(string archive, string destination, Stream output, CancellationToken cancellationToken,
        ImageLookup? image = null)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var prefix = destination.Trim('/');
        ArgumentNullException.ThrowIfNull(output);
        var needed = false;
        // The image's answers are the same for both passes: asked once.
        var imageView = image is null ? null : new ImageView(image);
        try
        {
            var scan = OpenDecompressed(archive);
            await using (scan.ConfigureAwait(false))
            {
                var resolver = new ConfinedResolver(imageView);
                var reader = new LayerTarReader(scan, leaveOpen: true, source: Path.GetFileName(archive), namesAsWritten: true);
                await using var readerScope = reader.ConfigureAwait(false);
                while (await reader.ReadNextAsync(cancellationToken).ConfigureAwait(false) is { } entry)
                {
                    if ((await resolver.ApplyAsync(Chars(reader.NameAsWritten.Span), entry.Type, Chars(entry.LinkTarget), cancellationToken).ConfigureAwait(false)).Changed)
                    {
                        needed = true;
                        break;
                    }
                }
            }
            if (!needed) return false;

            var bytePrefix = Chars(Encoding.UTF8.GetBytes(prefix));
            var input = OpenDecompressed(archive);
            await using (input.ConfigureAwait(false))
            {
                var resolver = new ConfinedResolver(imageView);
                var reader = new LayerTarReader(input, leaveOpen: true, source: Path.GetFileName(archive), namesAsWritten: true);
                await using var readerScope = reader.ConfigureAwait(false);
                var writer = new LayerTarWriter(output, leaveOpen: true, hashLayer: false);
                await using var writerScope = writer.ConfigureAwait(false);
                while (await reader.ReadNextAsync(cancellationToken).ConfigureAwait(false) is { } entry)
                {
                    var (name, linkName, _) = await resolver.ApplyAsync(Chars(reader.NameAsWritten.Span), entry.Type, Chars(entry.LinkTarget), cancellationToken).ConfigureAwait(false);
                    // The archive's root entry is skipped: the destination exists, and docker's Unpack leaves an
                    // existing directory alone for ".".
                    if (name == "./") continue;
                    var copy = entry with
                    {
                        Path = LayerPath.FromBytes(Bytes(Prefixed(bytePrefix, name))),
                        LinkTarget = linkName is null ? entry.LinkTarget : Bytes(Prefixed(bytePrefix, linkName)),
                    };
                    await writer.WriteEntryAsync(copy, entry.Type == LayerEntryType.RegularFile ? reader.Content : null, cancellationToken).ConfigureAwait(false);
                }
                await writer.FinishAsync(cancellationToken).ConfigureAwait(false);
            }
            return true;
        }
        catch (ImageFormatException e)
        {
            throw new BuildException($"cannot extract {e.Message}", e);
        }
    }

    private static string Prefixed(string prefix, string name) => prefix.Length == 0 ? name : prefix + "/" + name;

    /// <summary>A name as a byte string: one char (U+0000–U+00FF) per byte, so any bytes go through string code unchanged.</summary>
    private static string Chars(ReadOnlySpan<byte> bytes) => Encoding.Latin1.GetString(bytes);

    /// <summary>The bytes of a byte string (see <see cref="Chars"/>).</summary>
    private static byte[] Bytes(string chars) => Encoding.Latin1.GetBytes(chars);

    /// <summary>The image's paths under the destination as they were before the extraction, each asked once.</summary>
    private sealed class ImageView(ImageLookup lookup)
    {
        private readonly Dictionary<string, ImagePath> _known = new(StringComparer.Ordinal);

        /// <summary>What the image has at <paramref name="path"/>; nothing is asked below a path that is no directory.</summary>
        public async Task<ImagePath> AtAsync(string path, CancellationToken ct)
        {
            if (_known.TryGetValue(path, out var known)) return known;
            var slash = path.LastIndexOf('/');
            var found = (slash >= 0 && !(await AtAsync(path[..slash], ct).ConfigureAwait(false)).IsDirectory) || !System.Text.Unicode.Utf8.IsValid(Bytes(path))
                ? ImagePath.Missing
                : await lookup(Encoding.UTF8.GetString(Bytes(path)), ct).ConfigureAwait(false);
            _known[path] = found;
            return found;
        }
    }

    /// <summary>
    /// The state of an extraction chrooted at the destination: which paths are symlinks (and to what), those the
    /// archive makes and those the image already has there. Paths are relative to the destination, cleaned,
    /// without a leading slash.
    /// </summary>
    private sealed class ConfinedResolver(ImageView? image)
    {
        private readonly Dictionary<string, string> _links = new(StringComparer.Ordinal);
        // Paths the archive has written (the image's symlink there, if any, is gone), and those below which the
        // image has nothing any more (the archive replaced what was there by a non-directory, or a non-directory
        // of the image by a directory: only a directory over a directory merges).
        private readonly HashSet<string> _written = new(StringComparer.Ordinal);
        private readonly HashSet<string> _cut = new(StringComparer.Ordinal);

        /// <summary>The entry's name (and hard-link target) after resolution; Changed when either moved.</summary>
        /// <param name="entryName">The name as written (a byte string).</param>
        /// <param name="type">The entry's type.</param>
        /// <param name="linkName">A link's target as written (a byte string); empty for other types.</param>
        /// <param name="ct">Cancels the image's lookups.</param>
        public async Task<(string Name, string? LinkName, bool Changed)> ApplyAsync(string entryName, LayerEntryType type, string linkName, CancellationToken ct)
        {
            var clean = Clean(entryName);
            var resolved = await ResolveParentAsync(clean, ct).ConfigureAwait(false);
            string? link = null;
            var changed = resolved != clean || Climbs(entryName);
            if (type == LayerEntryType.HardLink)
            {
                var target = Clean(linkName);
                link = await ResolveParentAsync(target, ct).ConfigureAwait(false);
                changed |= link != target || Climbs(linkName);
            }
            if (type == LayerEntryType.Symlink && !linkName.StartsWith('/'))
            {
                var slash = resolved.LastIndexOf('/');
                changed |= Climbs((slash < 0 ? "" : resolved[..slash] + "/") + linkName);
            }
            // What the entry does to the tree: a symlink appears; anything else replaces what was there (a
            // directory over a directory only updates it, which leaves no link).
            if (resolved.Length > 0)
            {
                var wasLink = _links.Remove(resolved);
                if (wasLink || type != LayerEntryType.Directory)
                {
                    var prefix = resolved + "/";
                    foreach (var k in _links.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).ToList()) _links.Remove(k);
                }
                if (type == LayerEntryType.Symlink) _links[resolved] = linkName;
                if (image is not null)
                {
                    if (type != LayerEntryType.Directory || !(await ImageAtAsync(resolved, ct).ConfigureAwait(false)).IsDirectory)
                        _cut.Add(resolved);
                    _written.Add(resolved);
                }
            }
            return (resolved.Length == 0 ? "./" : type == LayerEntryType.Directory ? resolved + "/" : resolved, link, changed);
        }

        /// <summary>True when a relative path's <c>..</c> go above where it starts.</summary>
        internal static bool Climbs(string path)
        {
            var depth = 0;
            foreach (var p in path.Split('/'))
            {
                if (p is "" or ".") continue;
                depth += p == ".." ? -1 : 1;
                if (depth < 0) return true;
            }
            return false;
        }

        /// <summary>A tar name cleaned as Go's filepath.Clean joined to the root: <c>..</c> stops at the root.</summary>
        internal static string Clean(string name)
        {
            var parts = new List<string>();
            foreach (var p in name.Split('/'))
            {
                if (p is "" or ".") continue;
                if (p == "..")
                {
                    if (parts.Count > 0) parts.RemoveAt(parts.Count - 1);
                    continue;
                }
                parts.Add(p);
            }
            return string.Join('/', parts);
        }

        /// <summary>Resolves every component but the last through the symlinks, confined to the root.</summary>
        private async Task<string> ResolveParentAsync(string path, CancellationToken ct)
        {
            if (path.Length == 0) return path;
            var slash = path.LastIndexOf('/');
            if (slash < 0) return path;
            var parent = await ResolveAsync(path[..slash], ct).ConfigureAwait(false);
            return parent.Length == 0 ? path[(slash + 1)..] : parent + "/" + path[(slash + 1)..];
        }

        /// <summary>The image's entry at <paramref name="path"/> as the extraction sees it now: nothing below a path the
        /// archive cut, nor at a path the archive wrote.</summary>
        private async Task<ImagePath> ImageAtAsync(string path, CancellationToken ct)
        {
            for (var slash = path.IndexOf('/'); slash >= 0; slash = path.IndexOf('/', slash + 1))
            {
                if (_cut.Contains(path[..slash])) return ImagePath.Missing;
            }
            return _cut.Contains(path) ? ImagePath.Missing : await image!.AtAsync(path, ct).ConfigureAwait(false);
        }

        /// <summary>The symlink target at <paramref name="path"/> (the archive's, else the image's), or null.</summary>
        private async Task<string?> LinkAtAsync(string path, CancellationToken ct)
        {
            if (_links.TryGetValue(path, out var target)) return target;
            if (image is null || _written.Contains(path)) return null;
            return (await ImageAtAsync(path, ct).ConfigureAwait(false)).LinkTarget is { } text ? Chars(Encoding.UTF8.GetBytes(text)) : null;
        }

        /// <summary>Resolves every component of <paramref name="path"/> (a clean relative path) through the links.</summary>
        private async Task<string> ResolveAsync(string path, CancellationToken ct)
        {
            var hops = 0;
            var done = new List<string>();
            var pending = new Queue<string>(path.Split('/', StringSplitOptions.RemoveEmptyEntries));
            while (pending.Count > 0)
            {
                var part = pending.Dequeue();
                if (part == ".") continue;
                if (part == "..")
                {
                    if (done.Count > 0) done.RemoveAt(done.Count - 1);
                    continue;
                }
                done.Add(part);
                var current = string.Join('/', done);
                if (await LinkAtAsync(current, ct).ConfigureAwait(false) is not { } target) continue;
                if (++hops > MaxLinkHops) throw new BuildException($"too many levels of symbolic links in the archive at {current}");
                done.RemoveAt(done.Count - 1);
                // An absolute target starts again at the root (the destination); a relative one from the link's directory.
                var rest = pending.ToArray();
                pending.Clear();
                var restart = target.StartsWith('/') ? new List<string>() : [.. done];
                foreach (var p in target.Split('/', StringSplitOptions.RemoveEmptyEntries)) restart.Add(p);
                done.Clear();
                foreach (var p in restart) pending.Enqueue(p);
                foreach (var p in rest) pending.Enqueue(p);
            }
            return string.Join('/', done);
        }
    }

    /// <summary><c>xz -d -c</c> of a file, read as a stream; a failed decompression surfaces as an <see cref="InvalidDataException"/>.</summary>
    private sealed class XzProcessStream : Stream
    {
        private readonly Process _process;
        private readonly Stream _stdout;

        private XzProcessStream(Process process)
        {
            _process = process;
            _stdout = process.StandardOutput.BaseStream;
        }

        public static XzProcessStream Start(string path)
        {
            var psi = new ProcessStartInfo("xz") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { "-d", "-c", "-q", "--", path }) psi.ArgumentList.Add(a);
            try
            {
                var process = Process.Start(psi) ?? throw new BuildException("cannot start xz to read an xz archive");
                process.ErrorDataReceived += (_, _) => { };
                process.BeginErrorReadLine();
                return new XzProcessStream(process);
            }
            catch (System.ComponentModel.Win32Exception e)
            {
                throw new BuildException($"ADD of an xz-compressed file needs the xz program on PATH (docker's daemon runs it too): {e.Message}", e);
            }
        }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = _stdout.Read(buffer);
            if (n == 0 && buffer.Length > 0) CheckExit();
            return n;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = await _stdout.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (n == 0 && buffer.Length > 0) CheckExit();
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        private void CheckExit()
        {
            _process.WaitForExit();
            if (_process.ExitCode != 0) throw new InvalidDataException($"xz could not decompress the file (exit code {_process.ExitCode})");
        }

        public override void Flush() { }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                try
                {
                    if (!_process.HasExited) _process.Kill();
                    _process.WaitForExit();
                }
                catch (InvalidOperationException)
                {
                    // Already gone.
                }
                _stdout.Dispose();
                _process.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
