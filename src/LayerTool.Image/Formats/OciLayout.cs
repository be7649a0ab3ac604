using System.Text.Json.Nodes;

namespace LayerTool.Image.Formats;

/// <summary>
/// Reads an OCI image layout (https://github.com/opencontainers/image-spec/blob/main/image-layout.md):
/// <c>oci-layout</c>, <c>index.json</c>, <c>blobs/&lt;alg&gt;/&lt;hex&gt;</c>. Nested indexes resolve to one
/// platform; every blob read is checked against its descriptor.
/// </summary>
internal static class OciLayout
{
    public const string IndexFile = "index.json";
    public const string LayoutFile = "oci-layout";
    public const string RefNameAnnotation = "org.opencontainers.image.ref.name";
    public const string ContainerdNameAnnotation = "io.containerd.image.name";

    public static IReadOnlyList<ArchiveImage> ReadImages(ArchiveFiles files, Platform platform, IReadOnlyDictionary<Digest, IReadOnlyList<string>>? repoTags)
    {
        CheckLayoutVersion(files);
        var index = ImageIndex.Parse(files.ReadAll(IndexFile), $"{files.Description}: index.json");
        var order = new List<Digest>();
        var found = new Dictionary<Digest, (Descriptor Descriptor, List<string> Names)>();
        foreach (var listed in index.Manifests)
        {
            var descriptor = listed;
            Descriptor? manifest = descriptor;
            if (string.IsNullOrEmpty(descriptor.MediaType))
            {
                // Some tools leave the media type out of index.json: tell index from manifest by content.
                var kind = Json.ParseObject(files.ReadBlob(descriptor, "index.json entry"), $"{files.Description}: {descriptor.Digest}");
                descriptor = descriptor with { MediaType = kind["manifests"] is not null ? MediaTypes.OciIndex : MediaTypes.OciManifest };
                manifest = descriptor;
            }

            if (MediaTypes.IsIndex(descriptor.MediaType))
            {
                var nested = ImageIndex.Parse(files.ReadBlob(descriptor, "image index"), $"{files.Description}: image index {descriptor.Digest}");
                manifest = ChoosePlatform(files, nested, platform, descriptor);
            }
            else if (!MediaTypes.IsManifest(descriptor.MediaType))
            {
                continue;
            }

            if (!found.TryGetValue(manifest.Digest, out var entry))
            {
                entry = (manifest, new List<string>());
                found[manifest.Digest] = entry;
                order.Add(manifest.Digest);
            }

            foreach (var name in NamesOf(descriptor))
            {
                if (!entry.Names.Contains(name))
                {
                    entry.Names.Add(name);
                }
            }
        }

        var images = new List<ArchiveImage>(order.Count);
        foreach (var digest in order)
        {
            var (descriptor, names) = found[digest];
            images.Add(ReadImage(files, descriptor, names, repoTags));
        }

        return images;
    }

    private static ArchiveImage ReadImage(ArchiveFiles files, Descriptor descriptor, List<string> names, IReadOnlyDictionary<Digest, IReadOnlyList<string>>? repoTags)
    {
        var where = $"{files.Description}: manifest {descriptor.Digest}";
        var manifest = ImageManifest.Parse(files.ReadBlob(descriptor, "manifest"), where);
        var config = ImageConfig.Parse(files.ReadBlob(manifest.Config, "config"), $"{files.Description}: config {manifest.Config.Digest}");
        if (manifest.Layers.Count != config.DiffIds.Count)
        {
            throw new ImageFormatException($"{where}: lists {manifest.Layers.Count} layers but its config's rootfs.diff_ids has {config.DiffIds.Count}.");
        }

        var layers = new List<ILayer>(manifest.Layers.Count);
        for (var i = 0; i < manifest.Layers.Count; i++)
        {
            var layer = manifest.Layers[i];
            var what = $"{files.Description}: layer {i + 1} of {manifest.Layers.Count}";
            layers.Add(new ArchiveLayer(files, ArchiveFiles.BlobPath(layer.Digest), config.DiffIds[i], layer, layer.Digest, what));
        }

        if (repoTags is not null && repoTags.TryGetValue(manifest.Config.Digest, out var tags))
        {
            names.AddRange(tags.Where(t => !names.Contains(t)));
        }

        return new ArchiveImage(config, layers, names, descriptor, manifest);
    }

    private static Descriptor ChoosePlatform(ArchiveFiles files, ImageIndex index, Platform platform, Descriptor indexDescriptor)
    {
        var candidates = index.Manifests
            .Where(m => MediaTypes.IsManifest(m.MediaType))
            .Where(m => m.Annotation("vnd.docker.reference.type") != "attestation-manifest")
            .Where(m => m.Platform is null || m.Platform.Os != "unknown")
            .ToList();
        var present = candidates.Where(m => files.Exists(ArchiveFiles.BlobPath(m.Digest))).ToList();
        var pool = present.Count > 0 ? present : candidates;
        var matching = pool.Where(m => m.Platform?.Satisfies(platform) == true).ToList();
        if (matching.Count > 0)
        {
            return Inherit(matching[0], indexDescriptor);
        }

        if (pool.Count == 1)
        {
            return Inherit(pool[0], indexDescriptor);
        }

        var platforms = string.Join(", ", pool.Select(m => m.Platform?.ToString() ?? "(no platform)"));
        throw new ImageFormatException(pool.Count == 0
            ? $"{files.Description}: image index {indexDescriptor.Digest} lists no image manifest."
            : $"{files.Description}: image index {indexDescriptor.Digest} has no {platform} image (it has: {platforms}).");
    }

    private static Descriptor Inherit(Descriptor manifest, Descriptor index) =>
        manifest.Annotations is null && index.Annotations is not null ? manifest with { Annotations = index.Annotations } : manifest;

    private static IEnumerable<string> NamesOf(Descriptor descriptor)
    {
        var containerd = descriptor.Annotation(ContainerdNameAnnotation);
        if (containerd is not null)
        {
            yield return containerd;
        }

        var refName = descriptor.Annotation(RefNameAnnotation);
        if (refName is not null && refName != containerd)
        {
            yield return refName;
        }
    }

    private static void CheckLayoutVersion(ArchiveFiles files)
    {
        if (!files.Exists(LayoutFile))
        {
            return;
        }

        var json = Json.ParseObject(files.ReadAll(LayoutFile), $"{files.Description}: oci-layout");
        var version = Json.OptionalString(json, "imageLayoutVersion", $"{files.Description}: oci-layout");
        if (version is null || !version.StartsWith("1.", StringComparison.Ordinal))
        {
            throw new ImageFormatException($"{files.Description}: oci-layout: unsupported imageLayoutVersion '{version}'.");
        }
    }

    internal static JsonObject LayoutJson() => new() { ["imageLayoutVersion"] = "1.0.0" };
}
