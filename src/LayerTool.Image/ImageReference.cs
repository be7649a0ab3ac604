using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;

namespace LayerTool.Image;

/// <summary>
/// An image reference <c>[registry/]repository[:tag][@digest]</c>, parsed and normalised the way docker
/// does (distribution/reference <c>ParseNormalizedNamed</c> + <c>TagNameOnly</c>, grammar in
/// https://github.com/distribution/reference/blob/main/reference.go): <c>busybox</c> is
/// <c>docker.io/library/busybox:latest</c>; the first path component is a registry when it contains a
/// <c>.</c> or <c>:</c>, is <c>localhost</c>, or has an uppercase letter; <c>index.docker.io</c> is
/// <c>docker.io</c>; a reference with neither tag nor digest gets the tag <c>latest</c>.
/// </summary>
public readonly partial record struct ImageReference
{
    /// <summary>Docker Hub, the registry of names without one.</summary>
    public const string DefaultRegistry = "docker.io";

    /// <summary>The tag a reference without tag or digest gets.</summary>
    public const string DefaultTag = "latest";

    private const string LegacyDefaultRegistry = "index.docker.io";
    private const string OfficialRepositoryPrefix = "library/";
    private const int NameTotalLengthMax = 255;

    // The grammar of distribution/reference, written out for .NET (\w spelled as ASCII, as in Go).
    private const string PathComponent = "[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*";
    private const string DomainComponent = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    private const string Domain = "(?:" + DomainComponent + "(?:\\." + DomainComponent + ")*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?";
    private const string Path = PathComponent + "(?:/" + PathComponent + ")*";
    private const string NamePattern = "(?:" + Domain + "/)?" + Path;
    private const string TagPattern = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
    private const string DigestPattern = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";

    private ImageReference(string registry, string repository, string? tag, Digest? digest)
    {
        Registry = registry;
        Repository = repository;
        Tag = tag;
        Digest = digest;
    }

    /// <summary>The registry host (and port), e.g. <c>docker.io</c> or <c>localhost:5000</c>.</summary>
    public string Registry { get; }

    /// <summary>The repository path within the registry, e.g. <c>library/busybox</c>.</summary>
    public string Repository { get; }

    /// <summary>The tag; <c>latest</c> when the reference named neither tag nor digest; null with a digest only.</summary>
    public string? Tag { get; }

    /// <summary>The digest after <c>@</c>, if any.</summary>
    public Digest? Digest { get; }

    /// <summary>The full repository name, e.g. <c>docker.io/library/busybox</c>.</summary>
    public string Name => Registry + "/" + Repository;

    /// <summary>The name as docker shows it: <c>busybox</c>, <c>user/repo</c>, <c>localhost:5000/foo</c>.</summary>
    public string FamiliarName
    {
        get
        {
            if (Registry != DefaultRegistry)
            {
                return Name;
            }

            var rest = Repository;
            if (rest.StartsWith(OfficialRepositoryPrefix, StringComparison.Ordinal)
                && rest.IndexOf('/', OfficialRepositoryPrefix.Length) < 0)
            {
                rest = rest[OfficialRepositoryPrefix.Length..];
            }

            return rest;
        }
    }

    /// <summary>The reference as docker shows it: <c>busybox:latest</c>, <c>user/repo@sha256:…</c>.</summary>
    public string FamiliarString => FamiliarName + Suffix;

    private string Suffix => (Tag is null ? string.Empty : ":" + Tag) + (Digest is { } d ? "@" + d : string.Empty);

    /// <summary>The fully normalised reference, e.g. <c>docker.io/library/busybox:latest</c>.</summary>
    public override string ToString() => Registry is null ? string.Empty : Name + Suffix;

    /// <summary>This repository with another tag (and no digest).</summary>
    public ImageReference WithTag(string tag)
    {
        if (!TagRegex().IsMatch(tag))
        {
            throw new ImageFormatException($"invalid tag '{tag}'");
        }

        return new ImageReference(Registry, Repository, tag, null);
    }

    /// <summary>Parses and normalises a reference; throws <see cref="ImageFormatException"/> with docker's reason.</summary>
    public static ImageReference Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return TryParse(value, out var reference, out var error) ? reference : throw new ImageFormatException(error);
    }

    /// <summary>Parses and normalises a reference; false if it is invalid.</summary>
    public static bool TryParse([NotNullWhen(true)] string? value, out ImageReference reference) =>
        TryParse(value, out reference, out _);

    /// <summary>Parses and normalises a reference; on failure <paramref name="error"/> says why, as docker would.</summary>
    public static bool TryParse([NotNullWhen(true)] string? value, out ImageReference reference, [NotNullWhen(false)] out string? error)
    {
        reference = default;
        if (value is null)
        {
            error = "invalid reference format: empty reference";
            return false;
        }

        if (Sha256HexRegex().IsMatch(value))
        {
            error = $"invalid repository name ({value}), cannot specify 64-byte hexadecimal strings";
            return false;
        }

        var (registry, remainder) = SplitDockerDomain(value);
        var tagSeparator = remainder.IndexOf(':', StringComparison.Ordinal);
        var remote = tagSeparator >= 0 ? remainder[..tagSeparator] : remainder;
        if (!string.Equals(remote.ToLowerInvariant(), remote, StringComparison.Ordinal))
        {
            error = $"invalid reference format: repository name ({remote}) must be lowercase";
            return false;
        }

        var full = registry + "/" + remainder;
        var match = ReferenceRegex().Match(full);
        if (!match.Success)
        {
            error = ReferenceRegex().IsMatch(full.ToLowerInvariant())
                ? $"invalid reference format: repository name must be lowercase: '{value}'"
                : $"invalid reference format: '{value}'";
            return false;
        }

        var name = match.Groups[1].Value;
        if (name.Length > NameTotalLengthMax)
        {
            error = $"invalid reference format: repository name must not be more than {NameTotalLengthMax} characters: '{value}'";
            return false;
        }

        var nameMatch = NameRegex().Match(name);
        var domain = nameMatch.Groups[1].Value;
        var path = nameMatch.Groups[2].Value;

        Digest? digest = null;
        if (match.Groups[3].Success)
        {
            if (!LayerTool.Image.Digest.TryParse(match.Groups[3].Value, out var parsed, out var digestError))
            {
                error = $"invalid reference '{value}': {digestError}";
                return false;
            }

            digest = parsed;
        }

        var tag = match.Groups[2].Success ? match.Groups[2].Value : (digest is null ? DefaultTag : null);
        reference = new ImageReference(domain, path, tag, digest);
        error = null;
        return true;
    }

    private static (string Registry, string Remainder) SplitDockerDomain(string name)
    {
        var slash = name.IndexOf('/', StringComparison.Ordinal);
        string registry, remainder;
        if (slash < 0)
        {
            return (DefaultRegistry, OfficialRepositoryPrefix + name);
        }

        var first = name[..slash];
        if (first == "localhost" || first.Contains('.', StringComparison.Ordinal) || first.Contains(':', StringComparison.Ordinal)
            || !string.Equals(first.ToLowerInvariant(), first, StringComparison.Ordinal))
        {
            (registry, remainder) = (first, name[(slash + 1)..]);
        }
        else
        {
            (registry, remainder) = (DefaultRegistry, name);
        }

        if (registry == LegacyDefaultRegistry)
        {
            registry = DefaultRegistry;
        }

        if (registry == DefaultRegistry && !remainder.Contains('/', StringComparison.Ordinal))
        {
            remainder = OfficialRepositoryPrefix + remainder;
        }

        return (registry, remainder);
    }

    [GeneratedRegex("^[a-f0-9]{64}$", RegexOptions.CultureInvariant)]
    private static partial Regex Sha256HexRegex();

    [GeneratedRegex("^(" + NamePattern + ")(?::(" + TagPattern + "))?(?:@(" + DigestPattern + "))?$", RegexOptions.CultureInvariant)]
    private static partial Regex ReferenceRegex();

    [GeneratedRegex("^(?:(" + Domain + ")/)?(" + Path + ")$", RegexOptions.CultureInvariant)]
    private static partial Regex NameRegex();

    [GeneratedRegex("^" + TagPattern + "$", RegexOptions.CultureInvariant)]
    private static partial Regex TagRegex();
}
