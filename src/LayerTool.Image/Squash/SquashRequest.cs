namespace LayerTool.Image.Squash;

/// <summary>Where an image of a squash comes from: an engine, an archive or layout, a registry.</summary>
public abstract record SquashSource
{
    /// <summary>The prefix that names a registry reference where a path could stand (<c>--input registry://REF</c>).</summary>
    public const string RegistryScheme = "registry://";

    /// <summary>Whether <paramref name="text"/> is <c>registry://REF</c>.</summary>
    public static bool IsRegistry(string? text) => text?.StartsWith(RegistryScheme, StringComparison.Ordinal) == true;
}

/// <summary>An image an engine holds.</summary>
/// <param name="Reference">A reference or ID, as the engine knows it.</param>
public sealed record EngineSquashSource(string Reference) : SquashSource
{
    public override string ToString() => Reference;
}

/// <summary>An image in a docker-archive or OCI layout (directory or tar).</summary>
/// <param name="Path">The archive or layout.</param>
/// <param name="Name">A name, tag or ID inside it; null for its only image.</param>
public sealed record ArchiveSquashSource(string Path, string? Name) : SquashSource;

/// <summary>An image in a registry, pulled into the blob cache (each blob a verified file) and read from there.</summary>
/// <param name="Reference">The image.</param>
public sealed record RegistrySquashSource(ImageReference Reference) : SquashSource;

/// <summary>
/// What to squash and where the result goes, whichever squasher runs it: every layer <see cref="Image"/> adds over
/// <see cref="Base"/> becomes ONE layer, the difference of the two filesystems. The engine squash
/// (<c>EngineSquashService</c>) takes engine sources; the squash without an engine (<see cref="ArchiveSquasher"/>)
/// archive sources; the registry squasher archive and registry sources, and pushes.
/// </summary>
/// <param name="Image">IMAGE.</param>
/// <param name="Base">BASE, or null for scratch.</param>
public sealed record SquashRequest(SquashSource Image, SquashSource? Base)
{
    /// <summary>A squash of two images an engine holds (<paramref name="baseImage"/> null: onto scratch).</summary>
    public static SquashRequest OnEngine(string image, string? baseImage, IReadOnlyList<string>? tags = null) =>
        new(new EngineSquashSource(image), baseImage is null ? null : new EngineSquashSource(baseImage)) { Tags = tags ?? [] };

    /// <summary>Tags the result gets: in the engine (when loaded) and written into an output file.</summary>
    public IReadOnlyList<string> Tags { get; init; } = [];

    /// <summary>The comment of the squash's history entry.</summary>
    public string? Message { get; init; }

    /// <summary>Reproducible mode (SOURCE_DATE_EPOCH): file times above it and the history entry's time are clamped to it,
    /// so the same inputs give the same image ID.</summary>
    public DateTimeOffset? Timestamp { get; init; }

    /// <summary>The squash's time otherwise (null: now).</summary>
    public DateTimeOffset? Now { get; init; }

    /// <summary>Write the result to this file or directory (replaced only once complete); null: no file.</summary>
    public string? OutputPath { get; init; }

    /// <summary><c>docker</c> (docker-archive tar) or <c>oci</c> (OCI image layout).</summary>
    public string OutputFormat { get; init; } = "docker";

    /// <summary>Load the result into the engine (engine squash; false: only the output file).</summary>
    public bool Load { get; init; } = true;

    /// <summary>Allow the engine squash's local overlay2 fast path (false: always read through the engine API).</summary>
    public bool FastPath { get; init; } = true;

    /// <summary>Push the result to these references (the first uploads, the others find the blobs there); none: no push.</summary>
    public IReadOnlyList<ImageReference> Push { get; init; } = [];

    /// <summary>Where base filesystem indexes are cached for a squash without an engine (null: no cache; the engine squash
    /// has its own settings).</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>Where temp files go for a squash without an engine (null: the system's temp directory).</summary>
    public string? TempDirectory { get; init; }
}

/// <summary>What a squash produced, whichever squasher ran it.</summary>
/// <param name="ImageId">The result's image ID (its config digest; on a containerd-store engine the ID the engine gave it).</param>
/// <param name="LayerDiffId">The new layer's diff ID; empty when the image's filesystem equals the base's.</param>
/// <param name="LayersBefore">IMAGE's layers.</param>
/// <param name="LayersAfter">The result's layers.</param>
/// <param name="BytesBefore">IMAGE's layer bytes.</param>
/// <param name="BytesAfter">BASE's layer bytes plus the new layer's.</param>
/// <param name="LayerBytes">The new layer's uncompressed size.</param>
/// <param name="Warnings">Things the user should know.</param>
public sealed record SquashResult(
    string ImageId,
    string LayerDiffId,
    int LayersBefore,
    int LayersAfter,
    long BytesBefore,
    long BytesAfter,
    long LayerBytes,
    IReadOnlyList<string> Warnings)
{
    /// <summary>The tags the engine gave the result (none when it was not loaded).</summary>
    public IReadOnlyList<string> Tags { get; init; } = [];

    /// <summary>How the final filesystem was read (the engine squash: fast path or export), for people.</summary>
    public string? Method { get; init; }

    /// <summary>Each push done, in the order of <see cref="SquashRequest.Push"/>.</summary>
    public IReadOnlyList<(ImageReference Target, PushResult Result)> Pushed { get; init; } = [];
}
