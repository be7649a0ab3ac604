namespace LayerTool.Image.Formats;

/// <summary>Reads the docker-archive format (moby image/spec v1.2): manifest.json, configs, layer members.</summary>
internal static class DockerArchive
{
    private const string BlobPrefix = "blobs/sha256/";

    public static IReadOnlyList<ArchiveImage> ReadImages(ArchiveFiles files)
    {
        var entries = DockerArchiveManifest.ParseAll(files.ReadAll(DockerArchiveManifest.FileName));
        var images = new List<ArchiveImage>(entries.Count);
        foreach (var entry in entries)
        {
            var configBytes = ReadConfig(files, entry.Config);
            var config = ImageConfig.Parse(configBytes, $"{files.Description}: '{entry.Config}'");
            if (entry.Layers.Count != config.DiffIds.Count)
            {
                throw new ImageFormatException(
                    $"{files.Description}: manifest.json lists {entry.Layers.Count} layers for '{entry.Config}' but its rootfs.diff_ids has {config.DiffIds.Count}.");
            }

            var layers = new List<ILayer>(entry.Layers.Count);
            for (var i = 0; i < entry.Layers.Count; i++)
            {
                var path = entry.Layers[i];
                var blobDigest = DigestOfPath(path);
                var what = $"{files.Description}: layer {i + 1} of {entry.Layers.Count}";
                layers.Add(new ArchiveLayer(files, path, config.DiffIds[i], Describe(files, path, config.DiffIds[i], blobDigest), blobDigest, what));
            }

            images.Add(new ArchiveImage(config, layers, entry.RepoTags, manifestDescriptor: null, manifest: null));
        }

        return images;
    }

    /// <summary>RepoTags by config digest, from the manifest.json of a Docker 25+ save.</summary>
    public static IReadOnlyDictionary<Digest, IReadOnlyList<string>> ReadRepoTags(ArchiveFiles files)
    {
        var result = new Dictionary<Digest, IReadOnlyList<string>>();
        foreach (var entry in DockerArchiveManifest.ParseAll(files.ReadAll(DockerArchiveManifest.FileName)))
        {
            if (DigestOfPath(entry.Config) is { } digest)
            {
                result[digest] = entry.RepoTags;
            }
        }

        return result;
    }

    private static byte[] ReadConfig(ArchiveFiles files, string path)
    {
        var bytes = files.ReadAll(path);
        if (DigestOfPath(path) is { } expected)
        {
            var actual = Digest.Compute(bytes);
            if (actual != expected)
            {
                throw new ImageFormatException($"{files.Description}: config '{path}': digest mismatch: expected {expected}, got {actual}.");
            }
        }

        return bytes;
    }

    /// <summary>The digest a path names: <c>blobs/sha256/&lt;hex&gt;</c>, or <c>&lt;hex&gt;.json</c> for a config.</summary>
    private static Digest? DigestOfPath(string path)
    {
        var clean = TarIndex.Clean(path);
        var hex = clean.StartsWith(BlobPrefix, StringComparison.Ordinal) ? clean[BlobPrefix.Length..]
            : clean.EndsWith(".json", StringComparison.Ordinal) && !clean.Contains('/', StringComparison.Ordinal) ? clean[..^".json".Length]
            : null;
        return hex is not null && Digest.IsSha256Hex(hex) ? Digest.Parse("sha256:" + hex) : null;
    }

    /// <summary>A descriptor of the stored layer when it can be told without reading it whole.</summary>
    private static Descriptor? Describe(ArchiveFiles files, string path, Digest diffId, Digest? blobDigest)
    {
        if (!files.Exists(path))
        {
            return null;
        }

        Compression compression;
        using (var stream = files.OpenRead(path))
        {
            Span<byte> head = stackalloc byte[6];
            var n = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            compression = LayerCompression.Detect(head[..n]);
        }

        var digest = blobDigest ?? (compression == Compression.None ? diffId : (Digest?)null);
        return digest is { } d ? new Descriptor(LayerCompression.MediaType(compression), d, files.SizeOf(path)) : null;
    }
}
