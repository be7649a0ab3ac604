using Docker.DotNet.Models;
using LayerTool.Image;
using ContainerConfig = LayerTool.Image.ContainerConfig;

namespace LayerTool.Docker.Images;

/// <summary>Which image store the engine keeps images in (REFERENCE.md, "the containerd image store").</summary>
public enum ImageStoreKind
{
    /// <summary>The classic graph-driver store (overlay2, ...): image ID = config digest, save writes
    /// uncompressed layers, load skips layers whose chain ID exists.</summary>
    GraphDriver,

    /// <summary>The containerd snapshotter store (Docker 29 default): image ID = manifest digest, save
    /// copies blobs as stored (often gzip), load needs the OCI layout path for partial archives.</summary>
    Containerd,
}

/// <summary>What the engine says about one image (<c>GET /images/{name}/json</c>).</summary>
/// <param name="Id">The engine's image ID (<c>sha256:...</c>): the config digest on the graph-driver
/// store, the manifest digest on the containerd store.</param>
/// <param name="RepoTags">The tags that name it.</param>
/// <param name="RepoDigests">Registry digests it is known by.</param>
/// <param name="DiffIds">The uncompressed layer digests, bottom first (<c>RootFS.Layers</c>).</param>
/// <param name="Size">The image's size on disk as the engine reports it.</param>
/// <param name="Created">When the image was created.</param>
/// <param name="Os">The image's OS.</param>
/// <param name="Architecture">The image's CPU architecture.</param>
/// <param name="GraphDriver">The graph driver's name (e.g. <c>overlay2</c>) and its data (<c>UpperDir</c>,
/// <c>LowerDir</c>, ...): what a local fast path needs to find the layer directories.</param>
public sealed record EngineImage(
    string Id,
    IReadOnlyList<string> RepoTags,
    IReadOnlyList<string> RepoDigests,
    IReadOnlyList<string> DiffIds,
    long Size,
    DateTimeOffset? Created,
    string? Os,
    string? Architecture,
    EngineGraphDriver? GraphDriver)
{
    /// <summary>How a container of the image runs (its config's <c>config</c> object).</summary>
    public ContainerConfig Config { get; init; } = new();

    /// <summary>What the engine's inspect answer says, in these words.</summary>
    public static EngineImage From(ImageInspectResponse r)
    {
        ArgumentNullException.ThrowIfNull(r);
        return new EngineImage(
            r.ID,
            [.. r.RepoTags ?? []],
            [.. r.RepoDigests ?? []],
            [.. r.RootFS?.Layers ?? []],
            r.Size,
            r.Created,
            r.Os,
            r.Architecture,
            r.GraphDriver is null ? null : new EngineGraphDriver(r.GraphDriver.Name ?? "",
                new Dictionary<string, string>(r.GraphDriver.Data ?? new Dictionary<string, string>(), StringComparer.Ordinal)))
        {
            Config = DockerConfigs.FromDocker(r.Config),
        };
    }
}

/// <summary>The graph driver's name and the data it reports for one image.</summary>
public sealed record EngineGraphDriver(string Name, IReadOnlyDictionary<string, string> Data);
