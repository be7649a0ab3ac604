using LayerTool.Image;
using LayerTool.Docker;
using LayerTool.Dockerfile.Model;
using LayerTool.Docker.Images;

namespace LayerTool.Build.Execution;

/// <summary>What a stage has built so far. Owned by one stage's run; replaced field by field as steps finish.</summary>
internal sealed class StageState(Stage stage)
{
    public Stage Stage { get; } = stage;

    /// <summary>The current image (null: scratch and nothing committed yet).</summary>
    public string? ImageId { get; set; }

    /// <summary>The config the next commit will have.</summary>
    public ContainerConfig Config { get; set; } = new();

    /// <summary>The FROM image (null for scratch): the default COMPRESS base.</summary>
    public string? BaseImageId { get; set; }

    /// <summary>The image the stage is ultimately based on (its FROM, through earlier stages) as named, and as the engine
    /// described it; null for scratch. Recorded on the final image as the base labels.</summary>
    public (string Reference, EngineImage Image)? RootBase { get; set; }

    /// <summary>ARGs declared in this stage: name to value (null: declared without a value).</summary>
    public Dictionary<string, string?> Args { get; } = new(StringComparer.Ordinal);

    /// <summary>Names given by TAG in this build, to their images (COMPRESS may name them).</summary>
    public bool CmdSet { get; set; }

    public string? Maintainer { get; set; }

    /// <summary>The first cache miss of a stage busts the cache for the rest of it.</summary>
    public bool CacheBusted { get; set; }

    public IReadOnlyList<string> Shell => Config.Shell is { Count: > 0 } s ? s : ["/bin/sh", "-c"];
}
