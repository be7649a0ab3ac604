namespace LayerTool.Build.Plans.Run;

/// <summary>Rewrites a Dockerfile's references to plan images: <paramref name="replacement"/> maps a parent's name to
/// the reference the child must use for it (null: leave that parent's references as written).</summary>
public delegate string PlanDockerfileEdit(string dockerfile, Func<string, string?> replacement);

/// <summary>
/// A plan image as the runner needs it (made from the plan's graph): the image, the images it waits for, the
/// references in its Dockerfile that name plan images, and how to point those at the exact images the run made.
/// </summary>
/// <param name="Image">The image.</param>
/// <param name="Parents">Every plan image it depends on (inferred and by hand).</param>
/// <param name="References">Each <c>FROM</c> / <c>COPY --from</c> reference (as expanded) that names a plan image, to
/// that image's name: those parents are handed to the child's engine; the other references (busybox...) are given to
/// engines that lack them.</param>
/// <param name="Rewrite">Rewrites those references in the Dockerfile's text, keeping every line where it was.</param>
public sealed record PlanRunImage(PlanImage Image, IReadOnlyList<string> Parents, IReadOnlyDictionary<string, string> References, PlanDockerfileEdit Rewrite);

/// <summary>The hash of an image's inputs (context after .dockerignore, Dockerfile, args, and the parents' image IDs).</summary>
/// <param name="image">The image.</param>
/// <param name="parentImageIds">Each parent's image ID, by plan image name.</param>
/// <param name="cancellationToken">Cancels the hashing.</param>
/// <returns><c>sha256:...</c>.</returns>
public delegate Task<string> PlanInputHasher(PlanImage image, IReadOnlyDictionary<string, string> parentImageIds, CancellationToken cancellationToken);

/// <summary>The registry a plan run pushes to and hands parents through (the CLI implements it with LayerTool.Registry).</summary>
public interface IPlanRegistry
{
    /// <summary>Pushes <paramref name="image"/> to <paramref name="repository"/> under each of <paramref name="tags"/>
    /// (blobs the registry has are skipped); returns the manifest's digest, <c>sha256:...</c>.</summary>
    Task<string> PushAsync(LayerTool.Image.IImage image, string repository, IReadOnlyList<string> tags, CancellationToken cancellationToken);

    /// <summary>Null when the registry has <paramref name="reference"/> (<c>repo@sha256:...</c>), else why not (one line).</summary>
    Task<string?> CheckAsync(string reference, CancellationToken cancellationToken);
}
