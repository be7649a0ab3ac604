using LayerTool.Image;

namespace LayerTool.Registry.Blobs;

/// <summary>
/// Verified blobs kept by digest (<c>blobs/sha256/&lt;hex&gt;</c>) so a re-run fetches only what is missing,
/// with the partial download of a blob beside it (<c>&lt;hex&gt;.partial</c>) to resume from, and which
/// repositories each blob came from (<c>sources/&lt;hex&gt;</c>, for cross-repository mounts on push).
/// A file under <c>blobs/</c> only ever appears by a rename after its digest and size were checked.
/// </summary>
public sealed class BlobCache
{
    public BlobCache(string root)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        Root = Path.GetFullPath(root);
    }

    public string Root { get; }

    /// <summary>Where a verified blob lives.</summary>
    public string PathOf(Digest digest) => Path.Combine(Root, "blobs", digest.Algorithm, digest.Hex);

    /// <summary>Where a blob's download in progress lives.</summary>
    public string PartialPathOf(Digest digest) => PathOf(digest) + ".partial";

    /// <summary>The verified blob's path, when the cache has it with the expected size.</summary>
    public bool TryGet(Descriptor descriptor, out string path)
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        path = PathOf(descriptor.Digest);
        var info = new FileInfo(path);
        return info.Exists && info.Length == descriptor.Size;
    }

    /// <summary>Notes that <paramref name="digest"/> is in <paramref name="registry"/>/<paramref name="repository"/>.</summary>
    public void RecordSource(Digest digest, string registry, string repository)
    {
        var line = registry + "/" + repository;
        var path = Path.Combine(Root, "sources", digest.Hex);
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            if (File.Exists(path) && File.ReadLines(path).Contains(line, StringComparer.Ordinal))
            {
                return;
            }

            File.AppendAllLines(path, [line]);
        }
        catch (IOException)
        {
            // Only a hint for mounts: another process writing it at the same moment loses nothing that matters.
        }
    }

    /// <summary>The repositories of <paramref name="registry"/> the blob was seen in.</summary>
    public IReadOnlyList<string> SourcesIn(Digest digest, string registry)
    {
        var path = Path.Combine(Root, "sources", digest.Hex);
        try
        {
            return File.Exists(path)
                ? File.ReadLines(path).Where(l => l.StartsWith(registry + "/", StringComparison.Ordinal)).Select(l => l[(registry.Length + 1)..]).Distinct().ToList()
                : [];
        }
        catch (IOException)
        {
            return [];
        }
    }
}

/// <summary>What blob a layer (by diff ID) was stored as in a registry, remembered from pulls and pushes.</summary>
public static class BlobCacheDiffIds
{
    /// <summary>Records that the layer <paramref name="diffId"/> is the blob <paramref name="blob"/>.</summary>
    public static void RecordDiffId(this BlobCache cache, Digest diffId, Descriptor blob)
    {
        ArgumentNullException.ThrowIfNull(cache);
        ArgumentNullException.ThrowIfNull(blob);
        var path = Path.Combine(cache.Root, "diffids", diffId.Hex);
        var line = $"{blob.Digest} {blob.Size.ToString(System.Globalization.CultureInfo.InvariantCulture)} {blob.MediaType}";
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            if (File.Exists(path) && File.ReadLines(path).Contains(line, StringComparer.Ordinal))
            {
                return;
            }

            File.AppendAllLines(path, [line]);
        }
        catch (IOException)
        {
            // A hint only.
        }
    }

    /// <summary>The blobs the layer <paramref name="diffId"/> is known to be stored as.</summary>
    public static IReadOnlyList<Descriptor> BlobsOf(this BlobCache cache, Digest diffId)
    {
        ArgumentNullException.ThrowIfNull(cache);
        var path = Path.Combine(cache.Root, "diffids", diffId.Hex);
        var result = new List<Descriptor>();
        try
        {
            if (!File.Exists(path))
            {
                return result;
            }

            foreach (var line in File.ReadLines(path))
            {
                var parts = line.Split(' ', 3);
                if (parts.Length == 3 && Digest.TryParse(parts[0], out var digest)
                    && long.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var size))
                {
                    result.Add(new Descriptor(parts[2], digest, size));
                }
            }
        }
        catch (IOException)
        {
        }

        return result;
    }
}
