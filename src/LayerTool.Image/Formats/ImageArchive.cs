using System.IO.Compression;

namespace LayerTool.Image.Formats;

/// <summary>The layouts an image archive can have.</summary>
public enum ImageArchiveFormat
{
    /// <summary><c>docker save</c> up to Docker 24: manifest.json, &lt;id&gt;.json, &lt;id&gt;/layer.tar, repositories.</summary>
    DockerArchive,

    /// <summary>An OCI image layout (oci-layout, index.json, blobs/), as a directory or a tar.</summary>
    OciLayout,

    /// <summary><c>docker save</c> from Docker 25 on: an OCI image layout plus manifest.json in one tar.</summary>
    DockerOciArchive,
}

/// <summary>Options for reading archives.</summary>
public sealed record ImageArchiveOptions
{
    /// <summary>The platform chosen from a multi-platform index (the only one is chosen when there is one).</summary>
    public Platform Platform { get; init; } = Platform.LinuxAmd64;

    /// <summary>Where a non-seekable or compressed archive is spilled; the system temp directory when null.</summary>
    public string? TemporaryDirectory { get; init; }
}

/// <summary>
/// An image archive opened for reading: a docker-archive tar (<c>docker save</c> up to Docker 24), a Docker
/// 25+ save (OCI layout plus manifest.json), or an OCI image layout (directory or tar). Members are
/// located by one pass over the tar and streamed from it on demand; nothing is extracted. A stream that
/// cannot seek (or a gzip-compressed archive) is first spilled to a temporary file, deleted on dispose.
/// Keep the archive open while its images' layers are read.
/// </summary>
public sealed class ImageArchive : IDisposable
{
    private readonly ArchiveFiles _files;
    private readonly ImageArchiveOptions _options;

    private ImageArchive(ArchiveFiles files, ImageArchiveFormat format, IReadOnlyList<ArchiveImage> images, ImageArchiveOptions options)
    {
        _files = files;
        Format = format;
        Images = images;
        _options = options;
    }

    /// <summary>What the archive was read from (a path), for messages.</summary>
    public string Description => _files.Description;

    public ImageArchiveFormat Format { get; }

    /// <summary>The images in the archive, in the order the archive lists them.</summary>
    public IReadOnlyList<ArchiveImage> Images { get; }

    /// <summary>Opens a tar file (plain or gzip-compressed) or an OCI layout directory.</summary>
    public static ImageArchive Open(string path, ImageArchiveOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        options ??= new ImageArchiveOptions();
        if (Directory.Exists(path))
        {
            return Read(new DirectoryFiles(path), options);
        }

        if (!File.Exists(path))
        {
            throw new ImageFormatException($"{path}: no such file or directory.");
        }

        bool gzip;
        using (var probe = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 16))
        {
            Span<byte> head = stackalloc byte[6];
            var n = probe.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            gzip = LayerCompression.Detect(head[..n]) == Compression.Gzip;
        }

        if (gzip)
        {
            using var compressed = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
            return Read(Spill(compressed, path, options), options);
        }

        return Read(TarArchiveFiles.Open(path, path, deleteOnDispose: false), options);
    }

    /// <summary>
    /// Reads an archive from a stream (e.g. the body of <c>docker save</c>): the stream is copied to a
    /// temporary file (gzip undone on the way), which is indexed and deleted when the archive is disposed.
    /// </summary>
    public static async Task<ImageArchive> OpenAsync(Stream stream, string description, ImageArchiveOptions? options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        options ??= new ImageArchiveOptions();
        var directory = options.TemporaryDirectory ?? Path.GetTempPath();
        var spill = Path.Combine(directory, $"layertool-{Guid.NewGuid():N}.tar");
        try
        {
            var compression = LayerCompression.Detect(stream, out var rewound);
            var output = new FileStream(spill, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
            await using (output.ConfigureAwait(false))
            {
                // The caller owns the stream: only the gzip reader made here is disposed.
                if (compression == Compression.Gzip)
                {
                    var gzip = new GZipStream(rewound, CompressionMode.Decompress, leaveOpen: true);
                    await using (gzip.ConfigureAwait(false))
                    {
                        await gzip.CopyToAsync(output, 1 << 16, cancellationToken).ConfigureAwait(false);
                    }
                }
                else
                {
                    await rewound.CopyToAsync(output, 1 << 16, cancellationToken).ConfigureAwait(false);
                }
            }

            return Read(TarArchiveFiles.Open(spill, description, deleteOnDispose: true), options);
        }
        catch (InvalidDataException e)
        {
            File.Delete(spill);
            throw new ImageFormatException($"{description}: corrupt gzip: {e.Message}", e);
        }
        catch
        {
            File.Delete(spill);
            throw;
        }
    }

    /// <summary>
    /// The image named <paramref name="reference"/> (a reference, a tag name as written in the archive, or
    /// an image ID / manifest digest or a prefix of one), or the only image when null.
    /// </summary>
    public ArchiveImage GetImage(string? reference = null)
    {
        if (reference is null)
        {
            if (Images.Count == 1)
            {
                return Images[0];
            }

            return Images.Count == 0
                ? throw new ImageFormatException($"{Description}: the archive holds no image.")
                : ChooseByPlatform(Images, $"{Description}: the archive holds {Images.Count} images ({string.Join(", ", Images)}); name one.");
        }

        var matches = Images.Where(i => Matches(i, reference)).ToList();
        return matches.Count switch
        {
            0 => throw new ImageFormatException($"{Description}: no image '{reference}' in the archive (it holds: {string.Join(", ", Images)})."),
            1 => matches[0],
            _ => ChooseByPlatform(matches, $"{Description}: '{reference}' names {matches.Count} images."),
        };
    }

    public void Dispose() => _files.Dispose();

    private ArchiveImage ChooseByPlatform(IReadOnlyList<ArchiveImage> images, string ambiguous)
    {
        var chosen = images.Where(i => i.Platform?.Satisfies(_options.Platform) == true).ToList();
        return chosen.Count == 1 ? chosen[0] : throw new ImageFormatException(ambiguous);
    }

    private static bool Matches(ArchiveImage image, string name)
    {
        if (image.Names.Contains(name, StringComparer.Ordinal))
        {
            return true;
        }

        if (ImageReference.TryParse(name, out var reference) && image.References.Contains(reference))
        {
            return true;
        }

        var id = name.StartsWith("sha256:", StringComparison.Ordinal) ? name["sha256:".Length..] : name;
        return id.Length >= 12 && (image.Config.Digest.Hex.StartsWith(id, StringComparison.Ordinal)
            || (image.ManifestDescriptor?.Digest.Hex.StartsWith(id, StringComparison.Ordinal) ?? false));
    }

    private static TarArchiveFiles Spill(Stream compressed, string description, ImageArchiveOptions options)
    {
        var spill = Path.Combine(options.TemporaryDirectory ?? Path.GetTempPath(), $"layertool-{Guid.NewGuid():N}.tar");
        try
        {
            using (var output = new FileStream(spill, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            using (var input = new GZipStream(compressed, CompressionMode.Decompress, leaveOpen: true))
            {
                input.CopyTo(output);
            }

            return TarArchiveFiles.Open(spill, description, deleteOnDispose: true);
        }
        catch (InvalidDataException e)
        {
            File.Delete(spill);
            throw new ImageFormatException($"{description}: corrupt gzip: {e.Message}", e);
        }
        catch
        {
            File.Delete(spill);
            throw;
        }
    }

    private static ImageArchive Read(ArchiveFiles files, ImageArchiveOptions options)
    {
        try
        {
            if (!files.Exists(OciLayout.IndexFile) && !files.Exists(DockerArchiveManifest.FileName)
                && files.TopLevelNames() is { Count: 1 } top
                && (files.Exists(top.First() + "/" + OciLayout.IndexFile) || files.Exists(top.First() + "/" + DockerArchiveManifest.FileName)))
            {
                // A layout tarred with its directory (`tar cf layout.tar layout/`).
                files = files.Under(top.First());
            }

            var hasIndex = files.Exists(OciLayout.IndexFile);
            var hasManifest = files.Exists(DockerArchiveManifest.FileName);
            if (hasIndex)
            {
                var images = OciLayout.ReadImages(files, options.Platform, hasManifest ? DockerArchive.ReadRepoTags(files) : null);
                return new ImageArchive(files, hasManifest ? ImageArchiveFormat.DockerOciArchive : ImageArchiveFormat.OciLayout, images, options);
            }

            if (hasManifest)
            {
                return new ImageArchive(files, ImageArchiveFormat.DockerArchive, DockerArchive.ReadImages(files), options);
            }

            throw new ImageFormatException(
                $"{files.Description}: neither a docker-archive (no manifest.json) nor an OCI image layout (no index.json).");
        }
        catch
        {
            files.Dispose();
            throw;
        }
    }
}
