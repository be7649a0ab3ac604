using System.Text.RegularExpressions;

namespace LayerTool.Dockerfile.Instructions;

/// <summary>
/// Checks Docker image references (<c>[host[:port]/]path[:tag][@digest]</c>) by the grammar of the
/// distribution reference package. Kept here so the front end stays BCL-only.
/// </summary>
public static partial class ImageReferenceSyntax
{
    private const string Component = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
    private const string DomainPart = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    private const string Domain = "(?:" + DomainPart + @"(?:\." + DomainPart + @")*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?";
    private const string Tag = @"[\w][\w.-]{0,127}";
    private const string Digest = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";

    [GeneratedRegex("^(?:(" + Domain + ")/)?(" + Component + "(?:/" + Component + ")*)(?::(" + Tag + "))?(?:@(" + Digest + "))?$")]
    private static partial Regex ReferenceRegex();

    /// <summary>Why <paramref name="reference"/> is not a valid image reference, or null when it is.</summary>
    public static string? Validate(string reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        if (reference.Length == 0)
            return "invalid reference format: empty reference";
        var m = ReferenceRegex().Match(reference);
        if (!m.Success)
        {
            return ReferenceRegex().IsMatch(LowerPath(reference))
                ? "invalid reference format: repository name must be lowercase"
                : "invalid reference format";
        }

        if (m.Groups[1].Success && !LooksLikeDomain(m.Groups[1].Value) && m.Groups[1].Value.Any(char.IsUpper))
            return "invalid reference format: repository name must be lowercase";
        var name = (m.Groups[1].Success ? m.Groups[1].Value + "/" : string.Empty) + m.Groups[2].Value;
        return name.Length > 255 ? "invalid reference format: repository name must not be more than 255 characters" : null;
    }

    /// <summary>True when the reference carries a digest (<c>@sha256:...</c>).</summary>
    public static bool HasDigest(string reference) => reference?.Contains('@', StringComparison.Ordinal) == true;

    /// <summary>
    /// The reference with <c>:latest</c> added when it has neither tag nor digest, so <c>app</c> and
    /// <c>app:latest</c> compare equal.
    /// </summary>
    public static string Normalize(string reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        if (HasDigest(reference))
            return reference;
        var slash = reference.LastIndexOf('/');
        return reference.IndexOf(':', slash + 1) >= 0 ? reference : reference + ":latest";
    }

    private static bool LooksLikeDomain(string first) =>
        first.Contains('.', StringComparison.Ordinal) || first.Contains(':', StringComparison.Ordinal) || first == "localhost";

    private static string LowerPath(string reference)
    {
        var slash = reference.IndexOf('/', StringComparison.Ordinal);
        var first = slash < 0 ? string.Empty : reference[..slash];
        var hasDomain = slash >= 0 && LooksLikeDomain(first);
        var pathStart = hasDomain ? slash + 1 : 0;
        var tagAt = reference.IndexOfAny([':', '@'], pathStart);
        var pathEnd = tagAt < 0 ? reference.Length : tagAt;
        return reference[..pathStart] + reference[pathStart..pathEnd].ToLowerInvariant() + reference[pathEnd..];
    }
}
