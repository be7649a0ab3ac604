using System.Security.Cryptography;
using System.Text;
using LayerTool.Dockerfile.DockerIgnore;

namespace LayerTool.Build.Context;

/// <summary>What kind of filesystem object a context entry is.</summary>
public enum EntryKind
{
    File,
    Directory,
    Symlink,
}

/// <summary>One file, directory or symlink of the context, below a COPY/ADD source.
/// RelativePath is the path below the source ("" for the source itself), with forward slashes.</summary>
public sealed record ContextEntry(string RelativePath, string FullPath, EntryKind Kind, UnixFileMode Mode, long Size, DateTimeOffset ModifiedTime, string? LinkTarget);

/// <summary>A COPY/ADD source resolved in the context. ContextPath is context-relative, forward slashes ("" for the root).</summary>
public sealed record ContextSource(string ContextPath, string FullPath, bool IsDirectory);

/// <summary>
/// The build context: a directory, filtered by <c>.dockerignore</c>. Resolves COPY/ADD sources (wildcards as
/// Go's filepath.Match), refuses paths and symlinks that leave the context, and hashes what a source holds
/// (content, modes, link targets — never times) for the build cache.
/// </summary>
public sealed class BuildContext
{
    private BuildContext(string root, DockerIgnoreMatcher rules, IReadOnlySet<string> alwaysIncluded)
    {
        Root = root;
        Rules = rules;
        AlwaysIncluded = alwaysIncluded;
    }

    public string Root { get; }

    public DockerIgnoreMatcher Rules { get; }

    private IReadOnlySet<string> AlwaysIncluded { get; }

    /// <summary>
    /// Opens the context. The Dockerfile and .dockerignore follow the rules like any file: the docker CLI sends
    /// them even when .dockerignore excludes them, but docker's builder removes them from the context once read
    /// (moby builder/remotecontext: removeDockerfile), so an excluded one is never copied into the image.
    /// </summary>
    public static BuildContext Open(string directory, string? dockerfileRelativePath)
    {
        var root = Path.GetFullPath(directory);
        if (!Directory.Exists(root)) throw new BuildException($"the build context {directory} is not a directory");
        _ = dockerfileRelativePath;
        var always = new HashSet<string>(StringComparer.Ordinal);
        var ignore = Path.Combine(root, ".dockerignore");
        var rules = File.Exists(ignore) ? DockerIgnoreMatcher.Parse(File.ReadAllText(ignore)) : DockerIgnoreMatcher.Empty;
        return new BuildContext(root, rules, always);
    }

    public static bool HasWildcards(string path) => path.IndexOfAny(['*', '?', '[']) >= 0;

    private bool Excluded(string contextPath) => contextPath.Length > 0 && !AlwaysIncluded.Contains(contextPath) && Rules.IsExcluded(contextPath);

    /// <summary>Resolves one source as written in COPY/ADD (already expanded).</summary>
    public IReadOnlyList<ContextSource> Resolve(string source)
    {
        var cleaned = CleanRelative(source);
        if (HasWildcards(cleaned))
        {
            var matches = new List<ContextSource>();
            foreach (var (rel, full, isDir) in WalkAll(Root, ""))
            {
                if (Excluded(rel)) continue;
                if (GoGlob.IsMatch(cleaned, rel)) matches.Add(new ContextSource(rel, full, isDir));
            }
            // A matched directory already brings its children.
            return [.. matches.Where(m => !matches.Any(o => o.IsDirectory && o != m && m.ContextPath.StartsWith(o.ContextPath + "/", StringComparison.Ordinal)))];
        }

        var resolved = ResolveInContext(cleaned, source);
        if (!Path.Exists(resolved) || Excluded(cleaned))
            throw new BuildException($"file not found in build context or excluded by .dockerignore: stat {source}: file does not exist");
        return [new ContextSource(cleaned, resolved, Directory.Exists(resolved))];
    }

    /// <summary>Everything below a source, itself first, in ordinal path order, without excluded paths.</summary>
    public IEnumerable<ContextEntry> Entries(ContextSource source)
    {
        if (!source.IsDirectory)
        {
            yield return Describe("", source.FullPath, followLink: true);
            yield break;
        }
        yield return Describe("", source.FullPath, followLink: true);
        foreach (var (rel, full, _) in WalkAll(source.FullPath, ""))
        {
            var contextPath = source.ContextPath.Length == 0 ? rel : source.ContextPath + "/" + rel;
            if (Excluded(contextPath)) continue;
            yield return Describe(rel, full, followLink: false);
        }
    }

    /// <summary>A content hash of a source: paths, types, modes, sizes, link targets and file contents; never times.</summary>
    public string Hash(ContextSource source)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var e in Entries(source))
        {
            var line = $"{e.RelativePath}\0{e.Kind}\0{(int)e.Mode}\0{e.Size}\0{e.LinkTarget}\0";
            sha.AppendData(Encoding.UTF8.GetBytes(line));
            if (e.Kind == EntryKind.File)
            {
                using var f = File.OpenRead(e.FullPath);
                sha.AppendData(SHA256.HashData(f));
            }
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    private static ContextEntry Describe(string rel, string full, bool followLink)
    {
        FileSystemInfo info = Directory.Exists(full) && !IsLink(full) ? new DirectoryInfo(full) : new FileInfo(full);
        if (followLink && info.LinkTarget is not null)
        {
            var target = info.ResolveLinkTarget(returnFinalTarget: true);
            if (target is not null) info = target;
        }
        if (info.LinkTarget is not null)
            return new ContextEntry(rel, full, EntryKind.Symlink, (UnixFileMode)0x1FF, 0, info.LastWriteTimeUtc, info.LinkTarget);
        if (info is DirectoryInfo || (info.Attributes & FileAttributes.Directory) != 0)
            return new ContextEntry(rel, info.FullName, EntryKind.Directory, info.UnixFileMode, 0, info.LastWriteTimeUtc, null);
        return new ContextEntry(rel, info.FullName, EntryKind.File, info.UnixFileMode, ((FileInfo)info).Length, info.LastWriteTimeUtc, null);
    }

    private static bool IsLink(string path) => new FileInfo(path).LinkTarget is not null;

    /// <summary>Depth-first walk in ordinal name order, not following links; paths relative to <paramref name="dir"/>.</summary>
    private static IEnumerable<(string Rel, string Full, bool IsDir)> WalkAll(string dir, string prefix)
    {
        var children = new DirectoryInfo(dir).EnumerateFileSystemInfos().OrderBy(i => i.Name, StringComparer.Ordinal);
        foreach (var child in children)
        {
            var rel = prefix.Length == 0 ? child.Name : prefix + "/" + child.Name;
            var isDir = child is DirectoryInfo && child.LinkTarget is null;
            yield return (rel, child.FullName, isDir);
            if (isDir)
                foreach (var x in WalkAll(child.FullName, rel)) yield return x;
        }
    }

    /// <summary>Cleans a source path to a context-relative one; refuses one that climbs out.</summary>
    private static string CleanRelative(string source)
    {
        var parts = new List<string>();
        foreach (var part in source.Replace('\\', '/').Split('/'))
        {
            if (part is "" or ".") continue;
            if (part == "..")
            {
                if (parts.Count == 0) throw new BuildException($"forbidden path outside the build context: {source}");
                parts.RemoveAt(parts.Count - 1);
                continue;
            }
            parts.Add(part);
        }
        return string.Join('/', parts);
    }

    /// <summary>The on-disk path of a context path, following symlinks; refuses one that resolves outside the context.</summary>
    private string ResolveInContext(string contextPath, string original)
    {
        var current = Root;
        if (contextPath.Length == 0) return current;
        var hops = 0;
        var queue = new Queue<string>(contextPath.Split('/'));
        while (queue.Count > 0)
        {
            var part = queue.Dequeue();
            var next = Path.Combine(current, part);
            var info = new FileInfo(next);
            if (info.LinkTarget is { } target)
            {
                if (++hops > 40) throw new BuildException($"too many levels of symbolic links: {original}");
                var resolved = Path.GetFullPath(Path.IsPathRooted(target) ? target : Path.Combine(current, target));
                if (!IsInside(resolved))
                    throw new BuildException($"forbidden path outside the build context: {original} (a symlink points to {target})");
                var rest = queue.ToArray();
                queue.Clear();
                foreach (var p in Path.GetRelativePath(Root, resolved).Split('/').Where(p => p is not ("" or "."))) queue.Enqueue(p);
                foreach (var r in rest) queue.Enqueue(r);
                current = Root;
                continue;
            }
            current = next;
        }
        return current;
    }

    private bool IsInside(string fullPath) =>
        fullPath == Root || fullPath.StartsWith(Root.EndsWith('/') ? Root : Root + "/", StringComparison.Ordinal);
}

/// <summary>Go's <c>filepath.Match</c>: <c>*</c> and <c>?</c> never match <c>/</c>; <c>[...]</c> classes; <c>\</c> escapes.</summary>
public static class GoGlob
{
    public static bool IsMatch(string pattern, string name)
    {
        var regex = new StringBuilder("^");
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            switch (c)
            {
                case '*': regex.Append("[^/]*"); break;
                case '?': regex.Append("[^/]"); break;
                case '[':
                    var end = pattern.IndexOf(']', i + 1);
                    if (end < 0) return false;
                    var cls = pattern[(i + 1)..end];
                    if (cls.StartsWith('^')) cls = "^" + cls[1..];
                    regex.Append('[').Append(cls).Append(']');
                    i = end;
                    break;
                case '\\':
                    if (i + 1 < pattern.Length) regex.Append(System.Text.RegularExpressions.Regex.Escape(pattern[++i].ToString()));
                    break;
                default: regex.Append(System.Text.RegularExpressions.Regex.Escape(c.ToString())); break;
            }
        }
        regex.Append('$');
        return System.Text.RegularExpressions.Regex.IsMatch(name, regex.ToString(), System.Text.RegularExpressions.RegexOptions.CultureInvariant);
    }
}
