using System.Text.Json.Nodes;

namespace LayerTool.Image.Formats;

/// <summary>How to write an image.</summary>
public sealed record ImageWriteOptions
{
    /// <summary>
    /// <see cref="ImageArchiveFormat.DockerArchive"/> (manifest.json, &lt;hex&gt;.json, &lt;hex&gt;/layer.tar,
    /// repositories), <see cref="ImageArchiveFormat.OciLayout"/> (oci-layout, index.json, blobs/) or
    /// <see cref="ImageArchiveFormat.DockerOciArchive"/> (both indexes over one set of blobs, as Docker 25+
    /// saves: loadable by the graph-driver and the containerd image stores alike).
    /// </summary>
    public ImageArchiveFormat Format { get; init; } = ImageArchiveFormat.DockerArchive;

    /// <summary>The names to give the image (RepoTags; index.json annotations).</summary>
    public IReadOnlyList<ImageReference> Tags { get; init; } = [];

    /// <summary>Write an OCI layout as a directory instead of a tar (only with <see cref="ImageArchiveFormat.OciLayout"/>).</summary>
    public bool AsDirectory { get; init; }

    /// <summary>
    /// A partial archive: the first this many layers (the base's) are listed in manifest.json and the OCI
    /// manifest but their files are not written, for an engine that already has them. In the OCI formats
    /// those layers need their exact stored descriptors (<see cref="ILayer.Descriptor"/>, e.g. from a save of
    /// the base on the same engine, or <see cref="DescribedLayer"/>).
    /// </summary>
    public int OmitLayers { get; init; }

    /// <summary>In the OCI formats, copy a layer's stored (compressed) blob as it is when the source has one,
    /// keeping its digest; otherwise every written layer is an uncompressed tar.</summary>
    public bool KeepStoredBlobs { get; init; } = true;

    /// <summary>Told the total number of layer bytes written so far, as they stream.</summary>
    public IProgress<long>? Progress { get; init; }

    /// <summary>The modification time of the archive's members (deterministic output).</summary>
    public DateTimeOffset ModificationTime { get; init; } = DateTimeOffset.UnixEpoch;

    /// <summary>Where <see cref="ImageArchiveWriter.WriteAsync(Stream, IImage, ImageWriteOptions, CancellationToken)"/>
    /// builds the archive before copying it; the system temp directory when null.</summary>
    public string? TemporaryDirectory { get; init; }
}

/// <summary>What was written.</summary>
/// <param name="ImageId">The config digest (image ID in the graph-driver store).</param>
/// <param name="Manifest">The OCI manifest's descriptor (the image ID in the containerd store); null for a docker-archive.</param>
/// <param name="Layers">Each layer as the manifest lists it (digest, size and media type of the blob).</param>
/// <param name="OmittedLayers">How many layers were listed but not written.</param>
public sealed record ImageWriteResult(Digest ImageId, Descriptor? Manifest, IReadOnlyList<Descriptor> Layers, int OmittedLayers);

/// <summary>
/// Writes an image as a docker-archive, an OCI layout (tar or directory) or both in one tar, streaming each
/// layer from its <see cref="ILayer.Open"/> and checking every digest as the bytes pass. Output goes to a
/// temporary file (or directory) next to the target, renamed into place only when complete: a failure
/// leaves no partial output.
/// </summary>
public static class ImageArchiveWriter
{
    /// <summary>Writes the archive to <paramref name="path"/> (replacing a file; a directory must not exist or be empty).</summary>
    public static async Task<ImageWriteResult> WriteAsync(string path, IImage image, ImageWriteOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(options);
        Validate(image, options);
        var full = Path.GetFullPath(path);
        var parent = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(parent))
        {
            throw new ImageFormatException($"{path}: cannot write the image there: the directory '{parent}' does not exist.");
        }

        var temp = Path.Combine(parent, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        if (options.AsDirectory)
        {
            if (Directory.Exists(full) && Directory.EnumerateFileSystemEntries(full).Any())
            {
                throw new ImageFormatException($"{path}: the directory exists and is not empty.");
            }

            try
            {
                var result = await WriteAsync(new DirectorySink(temp), image, options, cancellationToken).ConfigureAwait(false);
                if (Directory.Exists(full))
                {
                    Directory.Delete(full);
                }

                Directory.Move(temp, full);
                return result;
            }
            catch
            {
                if (Directory.Exists(temp))
                {
                    Directory.Delete(temp, recursive: true);
                }

                throw;
            }
        }

        try
        {
            ImageWriteResult result;
            var file = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.Asynchronous);
            await using (file.ConfigureAwait(false))
            {
                result = await WriteAsync(new TarSink(new TarArchiveWriter(file, options.ModificationTime)), image, options, cancellationToken).ConfigureAwait(false);
            }

            File.Move(temp, full, overwrite: true);
            return result;
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    /// <summary>
    /// Writes the archive as a tar to <paramref name="output"/> (e.g. the body of <c>docker load</c>). It is
    /// built in a temporary file first, so nothing reaches the output unless the whole archive was written.
    /// </summary>
    public static async Task<ImageWriteResult> WriteAsync(Stream output, IImage image, ImageWriteOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(options);
        if (options.AsDirectory)
        {
            throw new ArgumentException("A stream receives a tar, not a directory.", nameof(options));
        }

        Validate(image, options);
        var temp = Path.Combine(options.TemporaryDirectory ?? Path.GetTempPath(), $"layertool-{Guid.NewGuid():N}.tar");
        try
        {
            var file = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.Asynchronous | FileOptions.DeleteOnClose);
            await using (file.ConfigureAwait(false))
            {
                var result = await WriteAsync(new TarSink(new TarArchiveWriter(file, options.ModificationTime)), image, options, cancellationToken).ConfigureAwait(false);
                file.Position = 0;
                await file.CopyToAsync(output, 1 << 16, cancellationToken).ConfigureAwait(false);
                return result;
            }
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>
    /// A docker-archive (e.g. the body of <c>docker load</c>) whose written layers are all <see cref="FileLayer"/>s,
    /// as a seekable stream of known length that reads each layer in place from its file: unlike
    /// <see cref="WriteAsync(Stream, IImage, ImageWriteOptions, CancellationToken)"/>, no copy of the layer is
    /// written and it is not hashed again (the layer was hashed while it was written; an engine checks every
    /// diffID on load anyway). Null when some written layer is not a file.
    /// </summary>
    public static Stream? TryOpenDockerArchive(IImage image, ImageWriteOptions options)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Format != ImageArchiveFormat.DockerArchive || options.AsDirectory)
        {
            throw new ArgumentException("Only a docker-archive tar can be opened as a stream.", nameof(options));
        }

        Validate(image, options);
        var layerPaths = new List<string>(image.Layers.Count);
        var segments = new List<ArchiveStream.Segment>();
        var block = new MemoryStream();
        var tar = new TarArchiveWriter(block, options.ModificationTime);
        for (var i = 0; i < image.Layers.Count; i++)
        {
            var layer = image.Layers[i];
            var layerPath = $"{layer.DiffId.Hex}/layer.tar";
            if (i >= options.OmitLayers && !tar.Contains(layerPath))
            {
                if (layer is not FileLayer file)
                {
                    return null;
                }

                var size = new FileInfo(file.FilePath).Length;
                tar.AddDirectory(layer.DiffId.Hex);
                tar.BeginMember(layerPath, size);
                segments.Add(ArchiveStream.Segment.Of(block.ToArray()));
                segments.Add(ArchiveStream.Segment.OfFile(file.FilePath, size));
                block.SetLength(0);
                tar.EndMember(size);
            }

            layerPaths.Add(layerPath);
        }

        var configPath = $"{image.Config.Digest.Hex}.json";
        var repoTags = options.Tags.Select(t => t.WithTag(t.Tag!).FamiliarString).Distinct().ToList();
        tar.AddFile(configPath, image.Config.Bytes.Span);
        tar.AddFile(DockerArchiveManifest.FileName, DockerArchiveManifest.ToBytes([new DockerArchiveManifest(configPath, repoTags, layerPaths)]));
        if (layerPaths.Count > 0 && repoTags.Count > 0)
        {
            tar.AddFile("repositories", Repositories(options.Tags, image.Layers[^1].DiffId.Hex));
        }

        tar.Finish();
        segments.Add(ArchiveStream.Segment.Of(block.ToArray()));
        return new ArchiveStream(segments);
    }

    private static void Validate(IImage image, ImageWriteOptions options)
    {
        _ = new ComposedImage(image.Config, image.Layers);
        if (options.OmitLayers < 0 || options.OmitLayers > image.Layers.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"OmitLayers must be between 0 and {image.Layers.Count}.");
        }

        foreach (var tag in options.Tags)
        {
            if (tag.Tag is null)
            {
                throw new ArgumentException($"'{tag}' has no tag: an image written to an archive is named by tags, not digests.", nameof(options));
            }
        }

        if (options.AsDirectory && options.Format != ImageArchiveFormat.OciLayout)
        {
            throw new ArgumentException("Only an OCI layout can be written as a directory.", nameof(options));
        }

        if (options.Format != ImageArchiveFormat.DockerArchive)
        {
            for (var i = 0; i < options.OmitLayers; i++)
            {
                if (image.Layers[i].Descriptor is null)
                {
                    throw new ImageFormatException(
                        $"Layer {i + 1} ({image.Layers[i].DiffId}) is to be omitted but its stored descriptor is unknown; a partial OCI archive "
                        + "must name base layers by the exact descriptors the engine has (read the base from a save of the same engine).");
                }
            }
        }
    }

    private static async Task<ImageWriteResult> WriteAsync(IArchiveSink sink, IImage image, ImageWriteOptions options, CancellationToken cancellationToken)
    {
        var oci = options.Format != ImageArchiveFormat.DockerArchive;
        var dockerManifest = options.Format != ImageArchiveFormat.OciLayout;
        var config = image.Config;
        var configPath = oci ? ArchiveFiles.BlobPath(config.Digest) : $"{config.Digest.Hex}.json";
        if (oci)
        {
            sink.AddDirectory("blobs");
            sink.AddDirectory("blobs/sha256");
        }

        var progress = options.Progress is null ? null : new ProgressCounter(options.Progress);
        var layerPaths = new List<string>(image.Layers.Count);
        var descriptors = new List<Descriptor>(image.Layers.Count);
        for (var i = 0; i < image.Layers.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var layer = image.Layers[i];
            var what = $"layer {i + 1} of {image.Layers.Count} ({layer.DiffId})";
            if (i < options.OmitLayers)
            {
                var descriptor = layer.Descriptor ?? new Descriptor(MediaTypes.OciLayer, layer.DiffId, 0);
                descriptors.Add(descriptor);
                layerPaths.Add(oci ? ArchiveFiles.BlobPath(descriptor.Digest) : $"{layer.DiffId.Hex}/layer.tar");
                continue;
            }

            if (oci && options.KeepStoredBlobs && layer is IBlobLayer { Descriptor: { } stored } blobLayer)
            {
                var path = ArchiveFiles.BlobPath(stored.Digest);
                if (!sink.Contains(path))
                {
                    var blob = ProgressStream.Wrap(blobLayer.OpenBlob(cancellationToken), progress);
                    await using (blob.ConfigureAwait(false))
                    {
                        var (digest, size) = await sink.AddStreamAsync(path, blob, cancellationToken).ConfigureAwait(false);
                        Check(what + " stored blob", stored.Digest, digest, stored.Size, size);
                    }
                }

                descriptors.Add(stored);
                layerPaths.Add(path);
                continue;
            }

            var layerPath = oci ? ArchiveFiles.BlobPath(layer.DiffId) : $"{layer.DiffId.Hex}/layer.tar";
            long written;
            if (sink.Contains(layerPath))
            {
                written = descriptors[layerPaths.IndexOf(layerPath)].Size;
            }
            else
            {
                if (!oci)
                {
                    sink.AddDirectory(layer.DiffId.Hex);
                }

                var tar = ProgressStream.Wrap(layer.Open(cancellationToken), progress);
                await using (tar.ConfigureAwait(false))
                {
                    var (digest, size) = await sink.AddStreamAsync(layerPath, tar, cancellationToken).ConfigureAwait(false);
                    Check(what, layer.DiffId, digest, null, size);
                    written = size;
                }
            }

            descriptors.Add(new Descriptor(oci ? MediaTypes.OciLayer : MediaTypes.DockerLayer, layer.DiffId, written));
            layerPaths.Add(layerPath);
        }

        await sink.AddFileAsync(configPath, config.Bytes, cancellationToken).ConfigureAwait(false);

        Descriptor? manifestDescriptor = null;
        if (oci)
        {
            var manifest = new ImageManifest(
                MediaTypes.OciManifest,
                new Descriptor(MediaTypes.OciConfig, config.Digest, config.Bytes.Length),
                descriptors);
            var manifestBytes = manifest.ToBytes();
            manifestDescriptor = new Descriptor(MediaTypes.OciManifest, Digest.Compute(manifestBytes), manifestBytes.Length);
            await sink.AddFileAsync(ArchiveFiles.BlobPath(manifestDescriptor.Digest), manifestBytes, cancellationToken).ConfigureAwait(false);
            var entries = options.Tags.Count == 0
                ? [manifestDescriptor]
                : options.Tags.Select(tag => manifestDescriptor with { Annotations = TagAnnotations(tag) }).ToList();
            var index = new ImageIndex(entries) { MediaType = MediaTypes.OciIndex };
            await sink.AddFileAsync(OciLayout.IndexFile, index.ToBytes(), cancellationToken).ConfigureAwait(false);
        }

        if (dockerManifest)
        {
            var repoTags = options.Tags.Select(t => t.WithTag(t.Tag!).FamiliarString).Distinct().ToList();
            var manifestJson = DockerArchiveManifest.ToBytes([new DockerArchiveManifest(configPath, repoTags, layerPaths)]);
            await sink.AddFileAsync(DockerArchiveManifest.FileName, manifestJson, cancellationToken).ConfigureAwait(false);
            if (!oci && layerPaths.Count > 0 && repoTags.Count > 0)
            {
                await sink.AddFileAsync("repositories", Repositories(options.Tags, image.Layers[^1].DiffId.Hex), cancellationToken).ConfigureAwait(false);
            }
        }

        if (oci)
        {
            await sink.AddFileAsync(OciLayout.LayoutFile, Json.ToBytes(OciLayout.LayoutJson()), cancellationToken).ConfigureAwait(false);
        }

        await sink.FinishAsync(cancellationToken).ConfigureAwait(false);
        return new ImageWriteResult(config.Digest, manifestDescriptor, descriptors, options.OmitLayers);
    }

    private static Dictionary<string, string> TagAnnotations(ImageReference tag)
    {
        var annotations = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [OciLayout.ContainerdNameAnnotation] = tag.WithTag(tag.Tag!).ToString(),
            [OciLayout.RefNameAnnotation] = tag.Tag!,
        };
        return annotations;
    }

    private static byte[] Repositories(IEnumerable<ImageReference> tags, string topLayer)
    {
        var json = new JsonObject();
        foreach (var tag in tags.Where(t => t.Tag is not null))
        {
            if (json[tag.FamiliarName] is not JsonObject repository)
            {
                repository = new JsonObject();
                json[tag.FamiliarName] = repository;
            }

            repository[tag.Tag!] = topLayer;
        }

        return Json.ToBytes(json);
    }

    private static void Check(string what, Digest expected, Digest actual, long? expectedSize, long actualSize)
    {
        if (expectedSize is { } size && size != actualSize)
        {
            throw new ImageFormatException($"{what}: {actualSize} bytes, expected {size}.");
        }

        if (expected != actual)
        {
            throw new ImageFormatException($"{what}: digest mismatch: expected {expected}, got {actual}.");
        }
    }

    private interface IArchiveSink
    {
        bool Contains(string name);

        void AddDirectory(string name);

        Task AddFileAsync(string name, ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

        Task<(Digest Digest, long Size)> AddStreamAsync(string name, Stream data, CancellationToken cancellationToken);

        Task FinishAsync(CancellationToken cancellationToken);
    }

    private sealed class TarSink(TarArchiveWriter writer) : IArchiveSink
    {
        public bool Contains(string name) => writer.Contains(name);

        public void AddDirectory(string name) => writer.AddDirectory(name);

        public Task AddFileAsync(string name, ReadOnlyMemory<byte> data, CancellationToken cancellationToken) =>
            writer.AddFileAsync(name, data, cancellationToken);

        public Task<(Digest Digest, long Size)> AddStreamAsync(string name, Stream data, CancellationToken cancellationToken) =>
            writer.AddStreamAsync(name, data, cancellationToken);

        public Task FinishAsync(CancellationToken cancellationToken) => writer.FinishAsync(cancellationToken);
    }

    private sealed class DirectorySink : IArchiveSink
    {
        private readonly string _root;

        public DirectorySink(string root)
        {
            _root = root;
            Directory.CreateDirectory(root);
        }

        public bool Contains(string name) => File.Exists(Path.Combine(_root, name));

        public void AddDirectory(string name) => Directory.CreateDirectory(Path.Combine(_root, name));

        public async Task AddFileAsync(string name, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            var stream = Create(name);
            await using (stream.ConfigureAwait(false))
            {
                await stream.WriteAsync(data, cancellationToken).ConfigureAwait(false);
            }
        }

        public async Task<(Digest Digest, long Size)> AddStreamAsync(string name, Stream data, CancellationToken cancellationToken)
        {
            var stream = Create(name);
            await using (stream.ConfigureAwait(false))
            {
                return await HashingCopy.CopyAsync(data, stream, cancellationToken).ConfigureAwait(false);
            }
        }

        public Task FinishAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        private FileStream Create(string name)
        {
            var path = Path.Combine(_root, name);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            return new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
        }
    }

    private static class HashingCopy
    {
        public static async Task<(Digest Digest, long Size)> CopyAsync(Stream input, Stream output, CancellationToken cancellationToken)
        {
            using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
            var buffer = new byte[1 << 17];
            long size = 0;
            int n;
            while ((n = await input.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
            {
                hash.AppendData(buffer, 0, n);
                await output.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                size += n;
            }

            return (Digest.FromSha256Hash(hash.GetHashAndReset()), size);
        }
    }

    /// <summary>The running total of layer bytes written, told to the caller's progress.</summary>
    private sealed class ProgressCounter(IProgress<long> progress)
    {
        private long _total;

        public void Add(int bytes)
        {
            _total += bytes;
            progress.Report(_total);
        }
    }

    /// <summary>Counts the bytes read through it into a <see cref="ProgressCounter"/>.</summary>
    private sealed class ProgressStream(Stream inner, ProgressCounter counter) : ReadOnlyStream
    {
        public static Stream Wrap(Stream stream, ProgressCounter? counter) => counter is null ? stream : new ProgressStream(stream, counter);

        public override int Read(Span<byte> buffer)
        {
            var n = inner.Read(buffer);
            counter.Add(n);
            return n;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            counter.Add(n);
            return n;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
