using System.Text.Json.Nodes;

namespace LayerTool.Image.Rebase;

/// <summary>The inputs of <see cref="Rebaser.Rebase"/>.</summary>
public sealed record RebaseRequest
{
    /// <summary>The image to move (its own layers are kept byte for byte).</summary>
    public required IImage Image { get; init; }

    /// <summary>The base the image was built on: its diff IDs must be a prefix of the image's.</summary>
    public required IImage OldBase { get; init; }

    /// <summary>The base to move onto: its layers come first in the result.</summary>
    public required IImage NewBase { get; init; }

    /// <summary>The new base's name for the <c>org.opencontainers.image.base.name</c> label; null removes the label.</summary>
    public string? NewBaseName { get; init; }

    /// <summary>The new base's digest for the <c>org.opencontainers.image.base.digest</c> label; null removes the label.</summary>
    public Digest? NewBaseDigest { get; init; }

    /// <summary>The <c>--take-base-config</c> keys (see <see cref="BaseConfigDiff"/>): base config changes to apply.</summary>
    public IReadOnlyList<string> TakeBaseConfig { get; init; } = [];
}

/// <summary>A rebased image: the new base's layers, then the image's own layers, and the rebuilt config.</summary>
/// <param name="Image">The result (config and layers).</param>
/// <param name="NewBaseLayers">How many of its layers are the new base's (the rest are the image's own).</param>
/// <param name="OldBaseLayers">How many layers of the image the old base accounted for.</param>
/// <param name="ConfigDifferences">How the two bases' configs differ, and what was applied.</param>
public sealed record RebasedImage(ComposedImage Image, int NewBaseLayers, int OldBaseLayers, IReadOnlyList<ConfigDifference> ConfigDifferences)
{
    /// <summary>The image's own layers (above the old base), as they are in the result.</summary>
    public IReadOnlyList<ILayer> OwnLayers => [.. Image.Layers.Skip(NewBaseLayers)];

    /// <summary>The image ID of the result (the config digest).</summary>
    public Digest ImageId => Image.Config.Digest;
}

/// <summary>
/// Moves an image from one base onto another, as go-containerregistry's <c>mutate.Rebase</c> does: the new
/// base's layers, then the image's layers above the old base unchanged (same diff IDs and blobs), and the
/// image's config with <c>rootfs</c>, <c>history</c> and the OCI base labels rebuilt. Pure: nothing is read but
/// the configs; the layers are passed through.
/// </summary>
public static class Rebaser
{
    /// <summary>
    /// The number of the image's layers that <paramref name="oldBase"/> accounts for: its diff IDs must be the
    /// first ones of the image's. Throws a <see cref="RebaseException"/> saying where they part otherwise.
    /// </summary>
    public static int CheckPrefix(ImageConfig image, ImageConfig oldBase, string imageName = "the image", string oldBaseName = "the old base")
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(oldBase);
        var k = oldBase.DiffIds.Count;
        if (k > image.DiffIds.Count)
        {
            throw new RebaseException(
                $"{oldBaseName} is not a base of {imageName}: it has {k} layers, {imageName} only {image.DiffIds.Count}; name the image's real base with --from.");
        }

        for (var i = 0; i < k; i++)
        {
            if (image.DiffIds[i] != oldBase.DiffIds[i])
            {
                throw new RebaseException(
                    $"{oldBaseName} is not a base of {imageName}: layer {i + 1} differs ({Short(oldBase.DiffIds[i])} in the base, {Short(image.DiffIds[i])} in the image); name the image's real base with --from.");
            }
        }

        return k;
    }

    /// <summary>Rebases <see cref="RebaseRequest.Image"/> from <see cref="RebaseRequest.OldBase"/> onto <see cref="RebaseRequest.NewBase"/>.</summary>
    public static RebasedImage Rebase(RebaseRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var image = request.Image;
        var k = CheckPrefix(image.Config, request.OldBase.Config);
        var differences = BaseConfigDiff.Compare(request.OldBase.Config, request.NewBase.Config, image.Config, request.TakeBaseConfig);
        var config = RebaseConfig(image.Config, request.OldBase.Config, request.NewBase.Config, k, request.NewBaseName, request.NewBaseDigest);
        config = BaseConfigDiff.Apply(config, differences);
        var layers = new List<ILayer>(request.NewBase.Layers.Count + image.Layers.Count - k);
        layers.AddRange(request.NewBase.Layers);
        layers.AddRange(image.Layers.Skip(k));
        return new RebasedImage(new ComposedImage(config, layers), request.NewBase.Layers.Count, k, differences);
    }

    /// <summary>
    /// The image's config moved onto a new base: <c>rootfs.diff_ids</c> = the new base's, then the image's own
    /// (those after the first <paramref name="oldBaseLayers"/>); <c>history</c> = the new base's entries, then the
    /// image's own entries (see <see cref="OwnHistoryStart"/>); the OCI base labels naming the new base. Every
    /// other field (runtime config, <c>created</c>, unknown fields) is the image's.
    /// </summary>
    public static ImageConfig RebaseConfig(ImageConfig image, ImageConfig oldBase, ImageConfig newBase, int oldBaseLayers, string? newBaseName,
        Digest? newBaseDigest)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(oldBase);
        ArgumentNullException.ThrowIfNull(newBase);
        var own = OwnHistoryStart(image, oldBase, oldBaseLayers);
        var imageHistory = image.ToJson()["history"] as JsonArray ?? [];
        var newHistory = newBase.ToJson()["history"] as JsonArray ?? [];
        var history = new JsonArray();
        foreach (var entry in newHistory) history.Add(entry?.DeepClone());
        for (var i = own; i < imageHistory.Count; i++) history.Add(imageHistory[i]?.DeepClone());
        var diffIds = newBase.DiffIds.Concat(image.DiffIds.Skip(oldBaseLayers)).Select(d => d.ToString()).ToList();
        return image.Edit(json =>
        {
            if (json["rootfs"] is not JsonObject rootfs)
            {
                rootfs = new JsonObject();
                json["rootfs"] = rootfs;
            }

            rootfs["type"] = "layers";
            rootfs["diff_ids"] = Json.StringArray(diffIds);
            if (history.Count > 0 || json["history"] is not null) json["history"] = history;
            ImageConfig.SetLabels(json, [
                new(SquashConfig.BaseNameLabel, newBaseName),
                new(SquashConfig.BaseDigestLabel, newBaseDigest?.ToString()),
            ]);
        });
    }

    /// <summary>
    /// Where the image's own history entries start. When the image's history begins with the old base's
    /// entries (as every builder copies them), right after them, so the base's trailing metadata entries (such
    /// as its CMD) stay with the base. Otherwise right after the entry of the old base's last layer: every
    /// <c>empty_layer</c> entry after it counts as the image's own (an extra entry is harmless, a lost one is
    /// not). A history that does not match the layers at all (not one entry per diff ID) is cut after the old
    /// base's entry count.
    /// </summary>
    public static int OwnHistoryStart(ImageConfig image, ImageConfig oldBase, int oldBaseLayers)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(oldBase);
        var history = image.History;
        var baseCount = oldBase.History.Count;
        if (history.Count(h => !h.EmptyLayer) != image.DiffIds.Count) return Math.Min(baseCount, history.Count);
        if (baseCount <= history.Count && history.Take(baseCount).SequenceEqual(oldBase.History)
            && history.Take(baseCount).Count(h => !h.EmptyLayer) == oldBaseLayers) return baseCount;
        if (oldBaseLayers == 0) return 0;
        var seen = 0;
        for (var i = 0; i < history.Count; i++)
        {
            if (!history[i].EmptyLayer && ++seen == oldBaseLayers) return i + 1;
        }

        return history.Count;
    }

    private static string Short(Digest digest) => digest.Hex.Length > 12 ? digest.Hex[..12] : digest.Hex;
}
