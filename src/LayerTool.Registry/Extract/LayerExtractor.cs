using System.Text;
using LayerTool.Image;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.Registry.Extract;

/// <summary>How to extract.</summary>
public sealed record ExtractOptions
{
    /// <summary>Apply whiteouts to the directory (remove what they hide); otherwise they are only listed.</summary>
    public bool ApplyWhiteouts { get; init; }

    /// <summary>Keep the entries' owners (only possible, and only done, as root).</summary>
    public bool KeepOwners { get; init; } = NativeFiles.IsRoot;
}

/// <summary>What an extraction did.</summary>
/// <param name="Entries">Entries written.</param>
/// <param name="Bytes">File content bytes written.</param>
/// <param name="Whiteouts">The whiteouts met (<c>path</c> hidden, or <c>dir/</c> made opaque), whether applied or not.</param>
/// <param name="Skipped">Entries that could not be made here and why (device nodes without root).</param>
public sealed record ExtractResult(int Entries, long Bytes, IReadOnlyList<string> Whiteouts, IReadOnlyList<string> Skipped);

/// <summary>
/// Extracts a layer tar (read with LayerTool.Image's <see cref="LayerTarReader"/>) into a directory, safely:
/// names are cleaned by the reader (absolute names and <c>..</c> escaping the root are refused), and every
/// path is resolved inside the directory as if it were the root (a symlink in the way is followed with
/// chroot semantics: an absolute target or <c>..</c> never leaves the directory; the last component is never
/// followed), so no write lands outside it. Modes are always set, owners only as root; directories get their
/// modes and times at the end (a read-only directory would refuse its own entries).
/// </summary>
public static class LayerExtractor
{
    private const int MaxSymlinkHops = 255;
    private const uint SIfChr = 0x2000;
    private const uint SIfBlk = 0x6000;
    private const uint SIfIfo = 0x1000;

    public static async Task<ExtractResult> ExtractAsync(Stream tar, string directory, ExtractOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(tar);
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(options);
        Directory.CreateDirectory(directory);
        var root = Encoding.UTF8.GetBytes(Path.GetFullPath(directory).TrimEnd('/'));
        var written = new HashSet<LayerPath>();
        var opaque = new List<LayerPath>();
        var whiteouts = new List<string>();
        var skipped = new List<string>();
        var directories = new List<(byte[] Path, LayerEntry Entry)>();
        var entries = 0;
        long bytes = 0;
        var reader = new LayerTarReader(tar, leaveOpen: true);
        await using (reader.ConfigureAwait(false))
        {
            while (await reader.ReadNextAsync(cancellationToken).ConfigureAwait(false) is { } entry)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (entry.Path.IsRoot || entry.Path.Ancestors().Any(a => Whiteouts.Classify(a) == WhiteoutKind.AufsMetadata))
                {
                    continue;
                }

                switch (Whiteouts.Classify(entry.Path))
                {
                    case WhiteoutKind.AufsMetadata:
                        continue;
                    case WhiteoutKind.Opaque:
                        whiteouts.Add(Display(entry.Path.Parent) + "/ (opaque)");
                        opaque.Add(entry.Path.Parent);
                        continue;
                    case WhiteoutKind.Whiteout:
                        var hidden = Whiteouts.Target(entry.Path);
                        whiteouts.Add(Display(hidden));
                        if (options.ApplyWhiteouts)
                        {
                            var target = Resolve(root, hidden, create: false);
                            if (target is not null)
                            {
                                Remove(target);
                            }
                        }

                        continue;
                    default:
                        break;
                }

                var path = Resolve(root, entry.Path, create: true)!;
                written.Add(entry.Path);
                entries++;
                var kind = NativeFiles.Probe(path, out _);
                if (kind != NativeFiles.Kind.Missing && !(entry.IsDirectory && kind == NativeFiles.Kind.Directory))
                {
                    Remove(path);
                }

                switch (entry.Type)
                {
                    case LayerEntryType.Directory:
                        NativeFiles.MakeDirectory(path, 0x1c0);
                        directories.Add((path, entry));
                        continue;
                    case LayerEntryType.RegularFile:
                        var file = NativeFiles.CreateFile(path, 0x180);
                        await using (file.ConfigureAwait(false))
                        {
                            if (entry.Size > 0)
                            {
                                await reader.Content.CopyToAsync(file, 1 << 17, cancellationToken).ConfigureAwait(false);
                                bytes += entry.Size;
                            }
                        }

                        break;
                    case LayerEntryType.Symlink:
                        NativeFiles.CreateSymlink(NativeFiles.Z(entry.LinkTarget), path);
                        break;
                    case LayerEntryType.HardLink:
                        var existing = Resolve(root, entry.HardLinkTarget, create: false)
                                       ?? throw new ImageFormatException($"{Display(entry.Path)}: hard link to {Display(entry.HardLinkTarget)}, which is not there");
                        if (NativeFiles.Probe(existing, out _) is NativeFiles.Kind.Directory or NativeFiles.Kind.Missing)
                        {
                            throw new ImageFormatException($"{Display(entry.Path)}: hard link to {Display(entry.HardLinkTarget)}, which is not a file");
                        }

                        NativeFiles.CreateHardLink(existing, path);
                        continue;
                    default:
                        var type = entry.Type switch
                        {
                            LayerEntryType.CharacterDevice => SIfChr,
                            LayerEntryType.BlockDevice => SIfBlk,
                            _ => SIfIfo,
                        };
                        if (!NativeFiles.TryCreateNode(path, type, entry.Mode, entry.DevMajor, entry.DevMinor, out var errno))
                        {
                            skipped.Add($"{Display(entry.Path)}: {entry.Type} not created ({System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno)})");
                            entries--;
                            continue;
                        }

                        break;
                }

                SetMetadata(path, entry, options);
            }
        }

        if (options.ApplyWhiteouts)
        {
            foreach (var dir in opaque)
            {
                ClearOpaque(root, dir, written);
            }
        }

        // Deepest first, so a read-only parent is closed after its children.
        for (var i = directories.Count - 1; i >= 0; i--)
        {
            SetMetadata(directories[i].Path, directories[i].Entry, options);
        }

        return new ExtractResult(entries, bytes, whiteouts, skipped);
    }

    private static void SetMetadata(byte[] path, LayerEntry entry, ExtractOptions options)
    {
        if (options.KeepOwners)
        {
            NativeFiles.SetOwner(path, entry.Uid, entry.Gid);
        }

        if (entry.Type != LayerEntryType.Symlink)
        {
            // After the owner: chown clears the setuid and setgid bits.
            NativeFiles.SetMode(path, entry.Mode);
        }

        NativeFiles.SetTime(path, entry.ModificationTime);
    }

    /// <summary>An opaque directory: everything in it that this layer did not write goes.</summary>
    private static void ClearOpaque(byte[] root, LayerPath dir, HashSet<LayerPath> written)
    {
        var real = Resolve(root, dir, create: false);
        if (real is null || NativeFiles.Probe(real, out _) != NativeFiles.Kind.Directory)
        {
            return;
        }

        var text = Encoding.UTF8.GetString(real.AsSpan(0, real.Length - 1));
        foreach (var child in Directory.EnumerateFileSystemEntries(text))
        {
            var name = Path.GetFileName(child);
            if (!written.Contains(dir.Append(name)))
            {
                Remove(NativeFiles.Z(Encoding.UTF8.GetBytes(child)));
            }
        }
    }

    private static void Remove(byte[] path)
    {
        if (!NativeFiles.TryRemove(path))
        {
            Directory.Delete(Encoding.UTF8.GetString(path.AsSpan(0, path.Length - 1)), recursive: true);
        }
    }

    /// <summary>
    /// The real path of <paramref name="path"/> inside <paramref name="root"/> (NUL-terminated), following every
    /// symlink but the last component's as if <paramref name="root"/> were <c>/</c>: an absolute target restarts at
    /// the root, <c>..</c> stops at it. With <paramref name="create"/> missing parents are made (0755); without it,
    /// null when a parent is missing.
    /// </summary>
    internal static byte[]? Resolve(byte[] root, LayerPath path, bool create)
    {
        var pending = Split(path.Bytes);
        pending.Reverse();
        var resolved = new List<byte[]>();
        var hops = 0;
        while (pending.Count > 0)
        {
            var component = pending[^1];
            pending.RemoveAt(pending.Count - 1);
            if (component.Length == 0 || component is [(byte)'.'])
            {
                continue;
            }

            if (component is [(byte)'.', (byte)'.'])
            {
                if (resolved.Count > 0)
                {
                    resolved.RemoveAt(resolved.Count - 1);
                }

                continue;
            }

            resolved.Add(component);
            if (pending.Count == 0)
            {
                break;
            }

            var current = Join(root, resolved);
            var kind = NativeFiles.Probe(current, out var target);
            switch (kind)
            {
                case NativeFiles.Kind.Symlink:
                    if (++hops > MaxSymlinkHops)
                    {
                        throw new ImageFormatException($"{path}: too many levels of symbolic links");
                    }

                    resolved.RemoveAt(resolved.Count - 1);
                    if (target!.Length > 0 && target[0] == (byte)'/')
                    {
                        resolved.Clear();
                    }

                    var parts = Split(target);
                    parts.Reverse();
                    pending.AddRange(parts);
                    break;
                case NativeFiles.Kind.Missing:
                    if (!create)
                    {
                        return null;
                    }

                    NativeFiles.MakeDirectory(current, 0x1ed);
                    break;
                case NativeFiles.Kind.Other:
                    if (!create)
                    {
                        return null;
                    }

                    // A file where the layer needs a directory: the layer replaces it, as an applier does.
                    Remove(current);
                    NativeFiles.MakeDirectory(current, 0x1ed);
                    break;
                default:
                    break;
            }
        }

        return Join(root, resolved);
    }

    private static List<byte[]> Split(ReadOnlySpan<byte> path)
    {
        var parts = new List<byte[]>();
        var start = 0;
        for (var i = 0; i <= path.Length; i++)
        {
            if (i == path.Length || path[i] == (byte)'/')
            {
                if (i > start)
                {
                    parts.Add(path[start..i].ToArray());
                }

                start = i + 1;
            }
        }

        return parts;
    }

    private static byte[] Join(byte[] root, List<byte[]> parts)
    {
        var length = root.Length + parts.Sum(p => p.Length + 1) + 1;
        var result = new byte[length];
        root.CopyTo(result, 0);
        var o = root.Length;
        foreach (var part in parts)
        {
            result[o++] = (byte)'/';
            part.CopyTo(result, o);
            o += part.Length;
        }

        return result;
    }

    private static string Display(LayerPath path) => "/" + path;
}
