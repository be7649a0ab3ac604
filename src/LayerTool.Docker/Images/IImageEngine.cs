namespace LayerTool.Docker.Images;

/// <summary>
/// The image calls squash, diff and layers need from an engine: small enough to fake in tests.
/// Every failure the user can act on is an <see cref="EngineException"/>.
/// </summary>
public interface IImageEngine
{
    /// <summary>Which image store the engine uses (<c>GET /info</c> DriverStatus <c>driver-type</c>).</summary>
    Task<ImageStoreKind> GetStoreKindAsync(CancellationToken cancellationToken);

    /// <summary>Inspects an image by reference or ID; null when the engine has no such image.</summary>
    Task<EngineImage?> TryInspectImageAsync(string reference, CancellationToken cancellationToken);

    /// <summary>The bytes of <c>docker save</c> of one image (docker-archive; on Docker 25+ also an OCI
    /// layout). The caller disposes the stream.</summary>
    Task<Stream> SaveImageAsync(string reference, CancellationToken cancellationToken);

    /// <summary>
    /// Streams the flattened filesystem of an image, as <c>docker export</c> of a container that is
    /// created from it and never started, into <paramref name="read"/>. The container is labelled and
    /// always removed, also when <paramref name="read"/> throws or the operation is cancelled. Note
    /// the engine's init layer: some paths (<see cref="LayerTool.Image.Layers.Diff.InitPathOverlay.DefaultPaths"/>) show the engine's stubs, not
    /// the image's files.
    /// </summary>
    Task<T> ExportImageFilesystemAsync<T>(string imageId, Func<Stream, CancellationToken, Task<T>> read, CancellationToken cancellationToken);

    /// <summary>Loads an image archive; returns the engine's "Loaded image..." lines. An error the engine
    /// reports inside its progress stream becomes an <see cref="EngineException"/>.</summary>
    Task<IReadOnlyList<string>> LoadImageAsync(Stream archive, CancellationToken cancellationToken);

    /// <summary>Tags an image (<paramref name="tag"/> as <c>repo[:tag]</c>, default tag <c>latest</c>).</summary>
    Task TagImageAsync(string image, string tag, CancellationToken cancellationToken);

    /// <summary>Removes an image or a tag; a missing image is not an error.</summary>
    Task RemoveImageAsync(string reference, CancellationToken cancellationToken);
}
