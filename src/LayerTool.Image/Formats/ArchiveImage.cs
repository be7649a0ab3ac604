namespace LayerTool.Image.Formats;

/// <summary>An image read from an archive or layout, with the names the archive gives it.</summary>
public sealed class ArchiveImage : IImage
{
    internal ArchiveImage(ImageConfig config, IReadOnlyList<ILayer> layers, IReadOnlyList<string> names, Descriptor? manifestDescriptor, ImageManifest? manifest)
    {
        Config = config;
        Layers = layers;
        Names = names;
        References = names
            .Select(n => ImageReference.TryParse(n, out var r) && LooksLikeReference(n) ? r : (ImageReference?)null)
            .OfType<ImageReference>()
            .Distinct()
            .ToList();
        ManifestDescriptor = manifestDescriptor;
        Manifest = manifest;
    }

    public ImageConfig Config { get; }

    public IReadOnlyList<ILayer> Layers { get; }

    /// <summary>The names as the archive writes them: RepoTags, <c>io.containerd.image.name</c>,
    /// <c>org.opencontainers.image.ref.name</c> (which may be a bare tag).</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>The names that are image references, normalised.</summary>
    public IReadOnlyList<ImageReference> References { get; }

    /// <summary>The manifest's descriptor in an OCI layout (its digest is the image ID in the containerd store).</summary>
    public Descriptor? ManifestDescriptor { get; }

    /// <summary>The manifest, when the archive has one (OCI layout, Docker 25+ save).</summary>
    public ImageManifest? Manifest { get; }

    /// <summary>The platform from the config.</summary>
    public Platform? Platform => Config.Architecture is { } arch && Config.Os is { } os ? new Platform(arch, os) { Variant = Config.Variant } : null;

    public override string ToString() => Names.Count > 0 ? Names[0] : Config.Digest.ToString();

    private static bool LooksLikeReference(string name) =>
        name.Contains(':', StringComparison.Ordinal) || name.Contains('/', StringComparison.Ordinal) || name.Contains('@', StringComparison.Ordinal);
}
