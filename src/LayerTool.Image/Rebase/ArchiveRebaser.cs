using LayerTool.Image.Formats;

namespace LayerTool.Image.Rebase;

/// <summary>A rebase between archives and OCI layouts (no engine).</summary>
/// <param name="Input">The archive or layout holding IMAGE (and the bases, unless <paramref name="BaseInput"/>).</param>
/// <param name="Image">IMAGE's name in the archive (null: the only image).</param>
/// <param name="Onto">The new base's name in <paramref name="BaseInput"/> (or <paramref name="Input"/>).</param>
/// <param name="From">The old base's name in either archive; null to find it (annotations, labels, longest prefix).</param>
/// <param name="BaseInput">Another archive or layout holding the bases; null when <paramref name="Input"/> holds them.</param>
/// <param name="Output">Where to write the result.</param>
/// <param name="Format"><c>docker</c> or <c>oci</c> (a directory unless the path ends in .tar).</param>
/// <param name="Tags">Names for the result in the output.</param>
/// <param name="Strict">Write nothing when there is a conflict.</param>
/// <param name="TakeBaseConfig">The <c>--take-base-config</c> keys.</param>
/// <param name="TempDirectory">Where temporary files go; the system's when null.</param>
public sealed record ArchiveRebaseRequest(string Input, string? Image, string Onto, string? From, string? BaseInput, string Output, string Format,
    IReadOnlyList<string> Tags, bool Strict, IReadOnlyList<string> TakeBaseConfig, string? TempDirectory = null);

/// <summary>
/// <c>layertool rebase --input A --output B</c>: reads the image and both bases from archives or OCI layouts,
/// checks and rebases them (<see cref="RebaseCheck"/>), and writes the whole result (the new base's layers and
/// the image's own, copied as stored) unless strict mode found a conflict.
/// </summary>
public static class ArchiveRebaser
{
    public static async Task<RebaseOutcome> RebaseAsync(ArchiveRebaseRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Format is not ("docker" or "oci")) throw new ArgumentException($"unknown output format '{request.Format}' (docker or oci)", nameof(request));
        var tags = request.Tags.Select(ParseTag).ToList();
        var options = new ImageArchiveOptions { TemporaryDirectory = request.TempDirectory };
        using var input = ImageArchive.Open(request.Input, options);
        using var other = request.BaseInput is null ? null : ImageArchive.Open(request.BaseInput, options);
        var archives = other is null ? new[] { input } : [input, other];
        var image = input.GetImage(request.Image);
        var newBase = (other ?? input).GetImage(request.Onto);
        var imageName = request.Image ?? image.ToString();
        var (oldBase, oldName, foundBy) = FindOldBase(archives, image, imageName, request.From);
        Rebaser.CheckPrefix(image.Config, oldBase.Config, imageName, oldName);

        using var oldIndex = await RebaseCheck.IndexAsync(oldBase, request.TempDirectory, cancellationToken).ConfigureAwait(false);
        using var newIndex = await RebaseCheck.IndexAsync(newBase, request.TempDirectory, cancellationToken).ConfigureAwait(false);
        var plan = await RebaseCheck.PlanAsync(new RebaseRequest
        {
            Image = image,
            OldBase = oldBase,
            NewBase = newBase,
            NewBaseName = request.Onto,
            NewBaseDigest = newBase.ManifestDescriptor?.Digest ?? newBase.Config.Digest,
            TakeBaseConfig = request.TakeBaseConfig,
        }, new RebaseNames(imageName, oldName, foundBy, request.Onto), oldIndex, newIndex, null, cancellationToken).ConfigureAwait(false);
        var own = plan.Result.Image.Layers.Count - plan.Result.NewBaseLayers;
        if (request.Strict && plan.Report.ConflictCount > 0) return new RebaseOutcome(plan.Report, null, [], null, 0, null, own);

        var oci = request.Format == "oci";
        var written = await ImageArchiveWriter.WriteAsync(request.Output, plan.Result.Image, new ImageWriteOptions
        {
            Format = oci ? ImageArchiveFormat.OciLayout : ImageArchiveFormat.DockerArchive,
            AsDirectory = oci && !request.Output.EndsWith(".tar", StringComparison.OrdinalIgnoreCase),
            Tags = tags,
            TemporaryDirectory = request.TempDirectory,
        }, cancellationToken).ConfigureAwait(false);
        return new RebaseOutcome(plan.Report, written.ImageId.ToString(), request.Tags, request.Output, 0, null, own);
    }

    /// <summary>The old base: <c>--from</c>, else what the image's annotations or labels name (when it is a prefix of
    /// the image), else the image of the archives whose layers are the longest proper prefix of the image's.</summary>
    private static (ArchiveImage Image, string Name, string FoundBy) FindOldBase(ImageArchive[] archives, ArchiveImage image, string imageName,
        string? from)
    {
        if (from is not null) return (Find(archives, from) ?? throw new ImageFormatException($"no image '{from}' (the old base) in {Describe(archives)}."), from, "--from");
        if (OldBaseHint.Of(image.Config, image.Manifest?.Annotations) is { } hint)
        {
            foreach (var candidate in hint.Candidates())
            {
                if (Find(archives, candidate) is { } found && IsPrefix(found, image)) return (found, hint.Name ?? candidate, hint.Source);
            }
        }

        var candidates = archives.SelectMany(a => a.Images).Select(i => (i, (IReadOnlyList<Digest>)i.Config.DiffIds));
        if (OldBaseHint.LongestPrefix(image.Config.DiffIds, candidates) is { } prefix) return (prefix, prefix.ToString(), "prefix");
        throw new RebaseException(
            $"cannot tell which base {imageName} was built on: it names none (no {SquashConfig.BaseNameLabel} annotation or label) and no image in {Describe(archives)} has a prefix of its layers; name it with --from.");
    }

    private static bool IsPrefix(ArchiveImage candidate, ArchiveImage image) =>
        candidate.Config.DiffIds.Count <= image.Config.DiffIds.Count && candidate.Config.DiffIds.SequenceEqual(image.Config.DiffIds.Take(candidate.Config.DiffIds.Count));

    private static ArchiveImage? Find(ImageArchive[] archives, string name)
    {
        foreach (var archive in archives)
        {
            try
            {
                return archive.GetImage(name);
            }
            catch (ImageFormatException)
            {
                // Not in this archive: try the next.
            }
        }

        return null;
    }

    private static string Describe(ImageArchive[] archives) => string.Join(" or ", archives.Select(a => a.Description));

    private static ImageReference ParseTag(string tag) =>
        ImageReference.TryParse(tag, out var reference, out var error) && reference.Digest is null
            ? reference.Tag is null ? reference.WithTag(ImageReference.DefaultTag) : reference
            : throw new RebaseException($"invalid tag '{tag}': {error ?? "a tag cannot hold a digest"}");
}
