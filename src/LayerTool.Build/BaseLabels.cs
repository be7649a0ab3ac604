using LayerTool.Docker;
using LayerTool.Image;
using LayerTool.Docker.Images;

namespace LayerTool.Build;

/// <summary>
/// The labels <c>org.opencontainers.image.base.name</c> and <c>org.opencontainers.image.base.digest</c> that a build
/// records on its final image for the final stage's FROM image, so that <c>layertool rebase</c> finds the old base
/// without <c>--from</c>. An engine image has no manifest to carry the OCI annotations of these names, so they are
/// labels (as the squash records its base). The name is the FROM reference as written (after ARG expansion); the
/// digest is the base's repo digest when it has one (the registry's manifest digest, which <c>name@digest</c>
/// resolves in a registry too), else its image ID.
/// </summary>
public static class BaseLabels
{
    /// <summary>Whether the user set either label (a <c>--label</c>, or a LABEL the Dockerfile names it in): then nothing is recorded.</summary>
    public static bool UserSets(IReadOnlyDictionary<string, string>? labels, string dockerfile)
    {
        ArgumentNullException.ThrowIfNull(dockerfile);
        return labels is not null && (labels.ContainsKey(SquashConfig.BaseNameLabel) || labels.ContainsKey(SquashConfig.BaseDigestLabel))
               || dockerfile.Contains(SquashConfig.BaseNameLabel, StringComparison.Ordinal)
               || dockerfile.Contains(SquashConfig.BaseDigestLabel, StringComparison.Ordinal);
    }

    /// <summary>The two labels for <paramref name="baseImage"/>, named <paramref name="reference"/>.</summary>
    public static IReadOnlyDictionary<string, string> For(string reference, EngineImage baseImage)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(baseImage);
        return new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [SquashConfig.BaseNameLabel] = reference,
            [SquashConfig.BaseDigestLabel] = DigestOf(reference, baseImage),
        };
    }

    /// <summary>
    /// The repo digest of the reference's own repository, else the first repo digest, else the image ID. A repo digest
    /// is <c>repository@sha256:…</c>; only the digest is kept.
    /// </summary>
    public static string DigestOf(string reference, EngineImage baseImage)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(baseImage);
        var repository = ImageReference.TryParse(reference, out var parsed) ? parsed.Name : null;
        string? first = null;
        foreach (var repoDigest in baseImage.RepoDigests)
        {
            var at = repoDigest.IndexOf('@', StringComparison.Ordinal);
            if (at <= 0 || !Digest.TryParse(repoDigest[(at + 1)..], out var digest)) continue;
            first ??= digest.ToString();
            if (repository is not null && ImageReference.TryParse(repoDigest[..at], out var owner) && owner.Name == repository) return digest.ToString();
        }

        return first ?? baseImage.Id;
    }

    /// <summary><paramref name="labels"/> with the base labels added (the base labels win over inherited ones, never over the user's).</summary>
    public static IReadOnlyDictionary<string, string> Merge(IReadOnlyDictionary<string, string> labels, IReadOnlyDictionary<string, string> baseLabels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(baseLabels);
        var merged = new Dictionary<string, string>(labels, StringComparer.Ordinal);
        foreach (var (key, value) in baseLabels) merged.TryAdd(key, value);
        return merged;
    }
}
