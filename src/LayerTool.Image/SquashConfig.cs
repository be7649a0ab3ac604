using System.Text.Json.Nodes;

namespace LayerTool.Image;

/// <summary>The inputs of <see cref="SquashConfig.Create"/>.</summary>
public sealed record SquashConfigOptions
{
    /// <summary>The config of the image being squashed (F): its runtime config and unknown fields are kept.</summary>
    public required ImageConfig Final { get; init; }

    /// <summary>The base's config (B), or null to squash onto scratch.</summary>
    public ImageConfig? Base { get; init; }

    /// <summary>The diff ID of the one new layer; null when the squash adds no layer.</summary>
    public Digest? NewLayerDiffId { get; init; }

    /// <summary>The user's message (<c>-m</c>), written as the squash entry's comment.</summary>
    public string? Message { get; init; }

    /// <summary>The squash entry's <c>created_by</c>.</summary>
    public string CreatedBy { get; init; } = "layertool squash";

    /// <summary>The base's name for the <c>org.opencontainers.image.base.name</c> label; null removes the label.</summary>
    public string? BaseName { get; init; }

    /// <summary>The base's digest for the <c>org.opencontainers.image.base.digest</c> label; null removes the label.</summary>
    public Digest? BaseDigest { get; init; }

    /// <summary>
    /// The time of the squash (already clamped by the caller for reproducible builds, e.g. to
    /// SOURCE_DATE_EPOCH): the squash entry's and the config's <c>created</c>. When null, F's
    /// <c>created</c> is used and kept, so the result depends on the inputs only.
    /// </summary>
    public DateTimeOffset? Created { get; init; }
}

/// <summary>
/// The config of a squashed image, as a pure function of its inputs (docs/design/ARCHITECTURE.md, "The squash
/// algorithm", step 4): F's config; <c>rootfs.diff_ids</c> = B's + the new layer's; history = B's
/// entries, then F's entries above what F shares with B, kept but marked <c>empty_layer</c> (so
/// <c>docker history</c> still shows how the image was made), then one entry for the squash; the OCI
/// base-image labels. The image ID is <see cref="ImageConfig.Digest"/> of the result, whose bytes are
/// written compactly and deterministically.
/// </summary>
public static class SquashConfig
{
    /// <summary>The OCI annotation/label naming the base image.</summary>
    public const string BaseNameLabel = "org.opencontainers.image.base.name";

    /// <summary>The OCI annotation/label holding the base image's digest.</summary>
    public const string BaseDigestLabel = "org.opencontainers.image.base.digest";

    public static ImageConfig Create(SquashConfigOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var final = options.Final.ToJson();
        var baseJson = options.Base?.ToJson();
        var finalHistory = final["history"] as JsonArray ?? [];
        var baseHistory = baseJson?["history"] as JsonArray ?? [];

        var shared = 0;
        while (shared < finalHistory.Count && shared < baseHistory.Count
            && JsonNode.DeepEquals(finalHistory[shared], baseHistory[shared]))
        {
            shared++;
        }

        var created = options.Created is { } time ? ImageConfig.FormatTime(time) : options.Final.Created;
        var history = new JsonArray();
        foreach (var entry in baseHistory)
        {
            history.Add((JsonNode?)entry?.DeepClone());
        }

        for (var i = shared; i < finalHistory.Count; i++)
        {
            var entry = finalHistory[i]?.DeepClone() as JsonObject ?? [];
            entry["empty_layer"] = true;
            history.Add((JsonNode)entry);
        }

        var squash = new JsonObject();
        if (created is not null)
        {
            squash["created"] = created;
        }

        squash["created_by"] = options.CreatedBy;
        if (!string.IsNullOrEmpty(options.Message))
        {
            squash["comment"] = options.Message;
        }

        if (options.NewLayerDiffId is null)
        {
            squash["empty_layer"] = true;
        }

        history.Add((JsonNode)squash);

        var diffIds = (options.Base?.DiffIds ?? []).Select(d => d.ToString()).ToList();
        if (options.NewLayerDiffId is { } newLayer)
        {
            diffIds.Add(newLayer.ToString());
        }

        if (final["rootfs"] is not JsonObject rootfs)
        {
            rootfs = new JsonObject();
            final["rootfs"] = rootfs;
        }

        rootfs["type"] = "layers";
        rootfs["diff_ids"] = Json.StringArray(diffIds);
        final["history"] = history;
        if (options.Created is not null)
        {
            final["created"] = created;
        }

        ImageConfig.SetLabels(final, [
            new(BaseNameLabel, options.BaseName),
            new(BaseDigestLabel, options.BaseDigest?.ToString()),
        ]);
        return ImageConfig.FromJson(final);
    }
}
