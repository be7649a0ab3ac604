namespace LayerTool.Image.Rebase;

/// <summary>The old base an image names for itself: the OCI annotations (a layout's manifest) or the same labels in its config.</summary>
/// <param name="Name">The <c>org.opencontainers.image.base.name</c> value, if any.</param>
/// <param name="Digest">The <c>org.opencontainers.image.base.digest</c> value, if any (a manifest digest or an image ID).</param>
/// <param name="Source"><c>annotation</c> or <c>label</c>.</param>
public sealed record OldBaseHint(string? Name, string? Digest, string Source)
{
    /// <summary>The hint of an image: its manifest annotations first, then its config labels; null when neither names a base.</summary>
    public static OldBaseHint? Of(ImageConfig config, IReadOnlyDictionary<string, string>? annotations)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (annotations is not null)
        {
            var name = annotations.GetValueOrDefault(SquashConfig.BaseNameLabel);
            var digest = annotations.GetValueOrDefault(SquashConfig.BaseDigestLabel);
            if (name is not null || digest is not null) return new OldBaseHint(Empty(name), Empty(digest), "annotation");
        }

        var labels = config.Config.Labels;
        if (labels is not null)
        {
            var name = labels.GetValueOrDefault(SquashConfig.BaseNameLabel);
            var digest = labels.GetValueOrDefault(SquashConfig.BaseDigestLabel);
            if (name is not null || digest is not null) return new OldBaseHint(Empty(name), Empty(digest), "label");
        }

        return null;
    }

    /// <summary>The references to try, most exact first: the digest (as an ID), name@digest, the name.</summary>
    public IEnumerable<string> Candidates()
    {
        if (Digest is not null) yield return Digest;
        if (Name is not null && Digest is not null && !Name.Contains('@', StringComparison.Ordinal)) yield return $"{StripTag(Name)}@{Digest}";
        if (Name is not null) yield return Name;
    }

    /// <summary>
    /// Of <paramref name="candidates"/> (name and diff IDs), the one whose layers are the longest proper prefix of
    /// <paramref name="image"/>'s (a base with at least one layer, fewer than the image's); null when none is.
    /// </summary>
    public static T? LongestPrefix<T>(IReadOnlyList<Digest> image, IEnumerable<(T Candidate, IReadOnlyList<Digest> DiffIds)> candidates)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(candidates);
        T? best = null;
        var bestLength = 0;
        foreach (var (candidate, diffIds) in candidates)
        {
            if (diffIds.Count <= bestLength || diffIds.Count >= image.Count) continue;
            if (diffIds.Select((d, i) => d == image[i]).All(x => x))
            {
                best = candidate;
                bestLength = diffIds.Count;
            }
        }

        return best;
    }

    private static string? Empty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;

    private static string StripTag(string name)
    {
        var slash = name.LastIndexOf('/');
        var colon = name.LastIndexOf(':');
        return colon > slash ? name[..colon] : name;
    }
}
