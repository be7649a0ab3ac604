using LayerTool.Docker.Images;
using LayerTool.Image;

namespace LayerTool.Docker;

/// <summary>
/// The engine calls the build executor needs, and nothing more. Implemented over the Docker Engine API by
/// LayerTool.Docker; faked in unit tests. Every method fails with <see cref="EngineException"/> when the
/// engine cannot be reached or refuses the request.
/// </summary>
public interface IDockerEngine
{
    /// <summary>The image's ID, config and layers, or null when the engine does not have it.</summary>
    Task<EngineImage?> InspectImageAsync(string reference, CancellationToken cancellationToken);

    /// <summary>Pulls <paramref name="reference"/> (a tag is always given); errors inside the stream are thrown.</summary>
    Task PullImageAsync(string reference, IProgress<string>? progress, CancellationToken cancellationToken);

    /// <summary>
    /// An image with an empty filesystem, to create containers from for a stage FROM scratch (the API cannot
    /// create a container without an image). Returns its ID.
    /// </summary>
    Task<string> ImportEmptyImageAsync(CancellationToken cancellationToken);

    /// <summary>Creates (does not start) a container; returns its ID.</summary>
    Task<string> CreateContainerAsync(ContainerSpec spec, CancellationToken cancellationToken);

    /// <summary>
    /// Attaches to the container's stdout and stderr (call before starting it). Returns once attached; the
    /// returned task completes when the output ends. <paramref name="onOutput"/> receives the demultiplexed
    /// bytes of both streams as they arrive.
    /// </summary>
    Task<Task> AttachAsync(string containerId, Action<ReadOnlyMemory<byte>> onOutput, CancellationToken cancellationToken);

    Task StartContainerAsync(string containerId, CancellationToken cancellationToken);

    /// <summary>Waits until the container exits; returns its exit code.</summary>
    Task<long> WaitContainerAsync(string containerId, CancellationToken cancellationToken);

    /// <summary>
    /// Commits the container as an image with exactly <paramref name="config"/> (sent whole: the endpoint
    /// merges it with the container's own config). Returns the new image ID.
    /// </summary>
    Task<string> CommitAsync(string containerId, ContainerConfig config, string? author, CancellationToken cancellationToken);

    /// <summary>Extracts a tar (plain, gzip, bzip2 or xz) into the container at <paramref name="directory"/>, which must exist.</summary>
    Task PutArchiveAsync(string containerId, string directory, Stream tar, CancellationToken cancellationToken);

    /// <summary>A tar of <paramref name="path"/> in the container (its base name is the root entry).</summary>
    Task<Stream> GetArchiveAsync(string containerId, string path, CancellationToken cancellationToken);

    /// <summary>What is at <paramref name="path"/> in the container, or null when nothing is.</summary>
    Task<PathStat?> StatPathAsync(string containerId, string path, CancellationToken cancellationToken);

    /// <summary>Removes the container (killing it if it runs) and its anonymous volumes; a missing one is not an error.</summary>
    Task RemoveContainerAsync(string containerId, CancellationToken cancellationToken);

    /// <summary>Tags <paramref name="imageId"/> as <paramref name="reference"/> (repository[:tag]).</summary>
    Task TagImageAsync(string imageId, string reference, CancellationToken cancellationToken);

    /// <summary>
    /// Replaces a just-committed RUN step image by one with the same layers, parent (<paramref name="parentId"/>,
    /// the image the step's container was created from; null: none) and history, whose config
    /// Env is exactly <paramref name="env"/> and whose last history entry (and container config Cmd) is
    /// <paramref name="createdBy"/>; removes the replaced image (never its parents) and returns the new ID.
    /// The commit endpoint merges the container's Env into the image, and a RUN's container has the build
    /// args in its Env, which the image must not keep (Docker's classic builder commits without that merge).
    /// </summary>
    Task<string> ReplaceStepConfigAsync(string imageId, string? parentId, IReadOnlyList<string> env, IReadOnlyList<string> createdBy, CancellationToken cancellationToken);

    /// <summary>
    /// True when <see cref="ReplaceStepConfigAsync"/> works with this engine (a graph-driver image store, whose
    /// image IDs are config digests and which loads an archive without the layers it has).
    /// </summary>
    Task<bool> CanReplaceStepConfigAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Removes the image reference <paramref name="reference"/> (a tag): the tag goes, and the image with it when
    /// no other reference names it and nothing uses it (its parents are never pruned). Returns false when the
    /// engine has no such reference.
    /// </summary>
    Task<bool> RemoveImageAsync(string reference, CancellationToken cancellationToken);

    /// <summary>
    /// Loads a copy of <paramref name="imageId"/> that differs only in its config's ONBUILD list, which becomes
    /// <paramref name="onBuild"/> (null: none), tagged <paramref name="tags"/>; no layer is sent (the engine has
    /// them). Returns the copy's ID. Needs what <see cref="ReplaceStepConfigAsync"/> needs.
    /// </summary>
    Task<string> ReplaceOnBuildAsync(string imageId, IReadOnlyList<string>? onBuild, IReadOnlyList<string> tags, CancellationToken cancellationToken);
}

/// <summary>A container to create.</summary>
/// <param name="Image">Image ID or reference.</param>
/// <param name="Config">The config (Cmd/Entrypoint as the step needs them).</param>
/// <param name="NetworkMode">Network mode (null: the engine's default).</param>
/// <param name="Name">Container name (identifies the build's containers for clean-up).</param>
public sealed record ContainerSpec(string Image, ContainerConfig Config, string? NetworkMode, string? Name)
{
    /// <summary>
    /// Paths declared as tmpfs mounts. A container that is never started never mounts them, but the engine then
    /// creates no volume for an image VOLUME at those paths, so the archive endpoint writes into the container's
    /// own filesystem there (as docker's classic builder copies into the layer).
    /// </summary>
    public IReadOnlyList<string> Tmpfs { get; init; } = [];
}

/// <summary>What the archive endpoint's stat says about a path. Mode holds Go <c>os.FileMode</c> bits (type bits
/// high, permissions low); LinkTarget is a symlink's target.</summary>
public sealed record PathStat(string Name, long Size, uint Mode, string? LinkTarget)
{
    private const uint GoModeDir = 1u << 31;
    private const uint GoModeSymlink = 1u << 27;

    public bool IsDirectory => (Mode & GoModeDir) != 0;

    public bool IsSymlink => (Mode & GoModeSymlink) != 0;
}
