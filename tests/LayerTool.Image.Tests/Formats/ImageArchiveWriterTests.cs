using System.Text;
using System.Text.Json.Nodes;
using LayerTool.Image;
using LayerTool.Image.Formats;

namespace LayerTool.Image.Tests.Formats;

public class ImageArchiveWriterTests
{
    private static readonly ImageReference[] Tags = [ImageReference.Parse("busybox:1"), ImageReference.Parse("localhost:5000/team/app:v2")];

    [Theory]
    [InlineData(ImageArchiveFormat.DockerArchive, false)]
    [InlineData(ImageArchiveFormat.OciLayout, false)]
    [InlineData(ImageArchiveFormat.OciLayout, true)]
    [InlineData(ImageArchiveFormat.DockerOciArchive, false)]
    public async Task Round_trips_an_image_through_each_format(ImageArchiveFormat format, bool asDirectory)
    {
        using var dir = new TempDir();
        var image = TestImage.Create(3);
        using var source = ImageArchive.Open(TestArchives.WriteTar(dir.File("in.tar"), TestArchives.DockerArchive(image, ["busybox:1"], gzipLayers: true)));
        var output = dir.File(asDirectory ? "out" : "out.tar");

        var result = await ImageArchiveWriter.WriteAsync(output, source.GetImage(), new ImageWriteOptions { Format = format, Tags = Tags, AsDirectory = asDirectory }, CancellationToken.None);

        result.ImageId.ShouldBe(image.ConfigDigest);
        result.Layers.Select(l => l.Digest).ShouldBe(image.DiffIds);
        (result.Manifest is null).ShouldBe(format == ImageArchiveFormat.DockerArchive);
        using var reread = ImageArchive.Open(output);
        reread.Format.ShouldBe(format);
        var read = reread.GetImage("busybox:1");
        reread.GetImage("localhost:5000/team/app:v2").ShouldBeSameAs(read);
        ImageAssertions.ShouldHaveLayers(read, image);
        Directory.GetFileSystemEntries(dir.Path).Length.ShouldBe(2, "no temporary files are left behind");
    }

    [Fact]
    public async Task Writes_a_docker_archive_the_way_docker_save_does()
    {
        using var dir = new TempDir();
        var image = TestImage.Create(2);
        var composed = new ComposedImage(ImageConfig.Parse(image.Config), image.Layers.Select((l, i) => (ILayer)new BytesLayer(l)).ToList());
        var path = dir.File("out.tar");
        await ImageArchiveWriter.WriteAsync(path, composed, new ImageWriteOptions { Tags = Tags }, CancellationToken.None);

        var names = TestArchives.MemberNames(path);
        names.ShouldContain($"{image.ConfigDigest.Hex}.json");
        names.ShouldContain($"{image.DiffIds[0].Hex}/layer.tar");
        names.ShouldContain("manifest.json");
        names.ShouldContain("repositories");
        var manifest = JsonNode.Parse(TestArchives.Member(path, "manifest.json"))!.AsArray();
        manifest[0]!["RepoTags"]!.AsArray().Select(t => t!.GetValue<string>()).ShouldBe(["busybox:1", "localhost:5000/team/app:v2"]);
        manifest[0]!["Layers"]!.AsArray().Select(t => t!.GetValue<string>()).ShouldBe(image.DiffIds.Select(d => $"{d.Hex}/layer.tar"));
        var repositories = JsonNode.Parse(TestArchives.Member(path, "repositories"))!;
        repositories["busybox"]!["1"]!.GetValue<string>().ShouldBe(image.DiffIds[1].Hex);
        repositories["localhost:5000/team/app"]!["v2"]!.GetValue<string>().ShouldBe(image.DiffIds[1].Hex);
    }

    [Fact]
    public async Task Writes_an_oci_layout_with_ref_name_and_containerd_annotations()
    {
        using var dir = new TempDir();
        var image = TestImage.Create(1);
        using var source = ImageArchive.Open(TestArchives.WriteTar(dir.File("in.tar"), TestArchives.DockerArchive(image, [])));
        var path = dir.File("layout");
        var result = await ImageArchiveWriter.WriteAsync(path, source.GetImage(), new ImageWriteOptions { Format = ImageArchiveFormat.OciLayout, AsDirectory = true, Tags = Tags }, CancellationToken.None);

        File.ReadAllText(Path.Combine(path, "oci-layout")).ShouldBe("{\"imageLayoutVersion\":\"1.0.0\"}");
        var index = ImageIndex.Parse(File.ReadAllBytes(Path.Combine(path, "index.json")));
        index.Manifests.Count.ShouldBe(2);
        index.Manifests[0].Digest.ShouldBe(result.Manifest!.Digest);
        index.Manifests[0].Annotation("io.containerd.image.name").ShouldBe("docker.io/library/busybox:1");
        index.Manifests[0].Annotation("org.opencontainers.image.ref.name").ShouldBe("1");
        index.Manifests[1].Annotation("io.containerd.image.name").ShouldBe("localhost:5000/team/app:v2");
        var manifest = ImageManifest.Parse(File.ReadAllBytes(Path.Combine(path, "blobs", "sha256", result.Manifest.Digest.Hex)));
        manifest.MediaType.ShouldBe(MediaTypes.OciManifest);
        manifest.Config.ShouldBe(new Descriptor(MediaTypes.OciConfig, image.ConfigDigest, image.Config.Length));
        manifest.Layers.Single().ShouldBe(new Descriptor(MediaTypes.OciLayer, image.DiffIds[0], image.Layers[0].Length));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Copies_stored_gzip_blobs_as_they_are_or_writes_plain_tars(bool keepStoredBlobs)
    {
        using var dir = new TempDir();
        var image = TestImage.Create(2);
        using var source = ImageArchive.Open(TestArchives.WriteTar(dir.File("in.tar"), TestArchives.OciLayout([(image, ["g:1"])], gzipLayers: true, withManifestJson: true)));
        var sourceImage = source.GetImage();
        var output = dir.File("out.tar");
        var result = await ImageArchiveWriter.WriteAsync(output, sourceImage, new ImageWriteOptions { Format = ImageArchiveFormat.DockerOciArchive, KeepStoredBlobs = keepStoredBlobs }, CancellationToken.None);

        if (keepStoredBlobs)
        {
            result.Layers.ShouldBe(sourceImage.Manifest!.Layers);
        }
        else
        {
            result.Layers.Select(l => l.Digest).ShouldBe(image.DiffIds);
            result.Layers.ShouldAllBe(l => l.MediaType == MediaTypes.OciLayer);
        }

        using var reread = ImageArchive.Open(output);
        ImageAssertions.ShouldHaveLayers(reread.GetImage(), image);
    }

    [Fact]
    public async Task Writes_a_partial_archive_for_both_stores_naming_base_layers_by_their_exact_descriptors()
    {
        using var dir = new TempDir();
        var baseImage = TestImage.Create(2, "base");
        using var baseSave = ImageArchive.Open(TestArchives.WriteTar(dir.File("base.tar"), TestArchives.OciLayout([(baseImage, ["base:1"])], gzipLayers: true, withManifestJson: true)));
        var b = baseSave.GetImage();
        var newLayerPath = dir.File("new-layer.tar");
        File.WriteAllBytes(newLayerPath, TestImage.LayerTar(("new.txt", "squashed")));
        var newLayer = await FileLayer.CreateAsync(newLayerPath, CancellationToken.None);
        var config = SquashConfig.Create(new SquashConfigOptions { Final = b.Config, Base = b.Config, NewLayerDiffId = newLayer.DiffId, BaseName = "base:1" });
        var squashed = new ComposedImage(config, [.. b.Layers, newLayer]);
        var output = dir.File("partial.tar");

        var result = await ImageArchiveWriter.WriteAsync(output, squashed, new ImageWriteOptions
        {
            Format = ImageArchiveFormat.DockerOciArchive,
            OmitLayers = b.Layers.Count,
            Tags = [ImageReference.Parse("app:squashed")],
        }, CancellationToken.None);

        result.OmittedLayers.ShouldBe(2);
        var names = TestArchives.MemberNames(output);
        foreach (var baseLayer in b.Manifest!.Layers)
        {
            names.ShouldNotContain($"blobs/sha256/{baseLayer.Digest.Hex}");
        }

        names.ShouldContain($"blobs/sha256/{newLayer.DiffId.Hex}");
        names.ShouldContain($"blobs/sha256/{config.Digest.Hex}");
        names.ShouldContain("oci-layout");
        var dockerManifest = DockerArchiveManifest.ParseAll(TestArchives.Member(output, "manifest.json")).Single();
        dockerManifest.Layers.ShouldBe([.. b.Manifest.Layers.Select(l => $"blobs/sha256/{l.Digest.Hex}"), $"blobs/sha256/{newLayer.DiffId.Hex}"]);
        dockerManifest.RepoTags.ShouldBe(["app:squashed"]);
        var index = ImageIndex.Parse(TestArchives.Member(output, "index.json"));
        index.Manifests.Single().Annotation("io.containerd.image.name").ShouldBe("docker.io/library/app:squashed");
        index.Manifests.Single().Annotation("org.opencontainers.image.ref.name").ShouldBe("squashed");
        var manifest = ImageManifest.Parse(TestArchives.Member(output, $"blobs/sha256/{index.Manifests[0].Digest.Hex}"));
        manifest.Layers.Take(2).ShouldBe(b.Manifest.Layers);
        manifest.Layers[2].ShouldBe(new Descriptor(MediaTypes.OciLayer, newLayer.DiffId, new FileInfo(newLayerPath).Length));

        using var reread = ImageArchive.Open(output);
        var image = reread.GetImage("app:squashed");
        image.Config.DiffIds.ShouldBe([.. baseImage.DiffIds, newLayer.DiffId]);
        using (var stream = image.Layers[2].Open(CancellationToken.None))
        {
            TestArchives.ReadAll(stream).ShouldBe(File.ReadAllBytes(newLayerPath));
        }

        Should.Throw<ImageFormatException>(() => image.Layers[0].Open(CancellationToken.None)).Message.ShouldContain("no member");
    }

    [Fact]
    public async Task A_streamed_partial_archive_head_layer_header_layer_suffix_is_a_docker_archive_naming_the_base_layers_and_the_new_one()
    {
        using var dir = new TempDir();
        var baseImage = TestImage.Create(2, "base");
        using var baseSave = ImageArchive.Open(TestArchives.WriteTar(dir.File("base.tar"), TestArchives.DockerArchive(baseImage, ["base:1"])));
        var b = baseSave.GetImage();
        var layer = TestImage.LayerTar(("new.txt", "streamed"), ("odd.bin", new string('y', 777)));
        var diffId = Digest.Compute(layer);
        var config = SquashConfig.Create(new SquashConfigOptions { Final = b.Config, Base = b.Config, NewLayerDiffId = diffId, BaseName = "base:1" });
        var squashed = new ComposedImage(config, [.. b.Layers, new DescribedLayer(diffId, null)]);

        var archive = dir.File("streamed.tar");
        await using (var output = File.Create(archive))
        {
            output.Write(StreamedDockerArchive.Head(DateTimeOffset.UnixEpoch));
            output.Write(StreamedDockerArchive.LayerHeader(layer.Length, DateTimeOffset.UnixEpoch));
            output.Write(layer);
            output.Write(StreamedDockerArchive.Suffix(squashed, b.Layers.Count, layer.Length, DateTimeOffset.UnixEpoch));
        }

        var manifest = DockerArchiveManifest.ParseAll(TestArchives.Member(archive, "manifest.json")).Single();
        manifest.Config.ShouldBe($"{config.Digest.Hex}.json");
        manifest.Layers.ShouldBe([.. b.Layers.Select(l => $"{l.DiffId.Hex}/layer.tar"), StreamedDockerArchive.LayerPath]);
        TestArchives.Member(archive, StreamedDockerArchive.LayerPath).ShouldBe(layer);
        TestArchives.Member(archive, manifest.Config).ShouldBe(config.Bytes.ToArray());
        TestArchives.MemberNames(archive).ShouldNotContain($"{b.Layers[0].DiffId.Hex}/layer.tar", "the base's layers are omitted");
        Should.Throw<ArgumentException>(() => StreamedDockerArchive.Suffix(squashed, 1, layer.Length, DateTimeOffset.UnixEpoch));
    }

    [Fact]
    public void A_piped_partial_archive_has_the_layer_as_a_fifo_member_and_a_manifest_naming_the_base_layers_and_the_pipe()
    {
        using var dir = new TempDir();
        var baseImage = TestImage.Create(2, "base");
        using var baseSave = ImageArchive.Open(TestArchives.WriteTar(dir.File("base.tar"), TestArchives.DockerArchive(baseImage, ["base:1"])));
        var b = baseSave.GetImage();
        var diffId = Digest.Compute(TestImage.LayerTar(("new.txt", "piped")));
        var config = SquashConfig.Create(new SquashConfigOptions { Final = b.Config, Base = b.Config, NewLayerDiffId = diffId, BaseName = "base:1" });
        var squashed = new ComposedImage(config, [.. b.Layers, new DescribedLayer(diffId, null)]);

        var head = StreamedDockerArchive.PipedHead("layertool-0123", DateTimeOffset.UnixEpoch);
        head.Length.ShouldBe(1024, "two header blocks: the directory and the pipe");
        var suffix = StreamedDockerArchive.PipedSuffix(squashed, b.Layers.Count, "layertool-0123", DateTimeOffset.UnixEpoch);
        var archive = dir.File("piped.tar");
        File.WriteAllBytes(archive, [.. head, .. suffix]);

        using (var reader = new System.Formats.Tar.TarReader(File.OpenRead(archive)))
        {
            var entries = new List<(string Name, System.Formats.Tar.TarEntryType Type, long Length)>();
            while (reader.GetNextEntry() is { } entry) entries.Add((entry.Name, entry.EntryType, entry.Length));
            entries.Select(e => (e.Name, e.Type)).ShouldBe([
                ("layertool-0123/", System.Formats.Tar.TarEntryType.Directory),
                ("layertool-0123/layer.tar", System.Formats.Tar.TarEntryType.Fifo),
                ($"{config.Digest.Hex}.json", System.Formats.Tar.TarEntryType.RegularFile),
                ("manifest.json", System.Formats.Tar.TarEntryType.RegularFile),
            ]);
            entries[1].Length.ShouldBe(0);
        }
        var manifest = DockerArchiveManifest.ParseAll(TestArchives.Member(archive, "manifest.json")).Single();
        manifest.Config.ShouldBe($"{config.Digest.Hex}.json");
        manifest.Layers.ShouldBe([.. b.Layers.Select(l => $"{l.DiffId.Hex}/layer.tar"), StreamedDockerArchive.PipedLayerPath("layertool-0123")]);
        TestArchives.Member(archive, manifest.Config).ShouldBe(config.Bytes.ToArray());
        Should.Throw<ArgumentException>(() => StreamedDockerArchive.PipedSuffix(squashed, 1, "layertool-0123", DateTimeOffset.UnixEpoch));
        Should.Throw<ArgumentException>(() => StreamedDockerArchive.PipedHead("", DateTimeOffset.UnixEpoch));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Opens_a_partial_docker_archive_over_the_layer_file_with_the_bytes_it_would_write(bool tagged)
    {
        using var dir = new TempDir();
        var baseImage = TestImage.Create(2, "base");
        using var baseSave = ImageArchive.Open(TestArchives.WriteTar(dir.File("base.tar"), TestArchives.DockerArchive(baseImage, ["base:1"])));
        var b = baseSave.GetImage();
        var newLayerPath = dir.File("new-layer.tar");
        File.WriteAllBytes(newLayerPath, TestImage.LayerTar(("new.txt", "squashed"), ("odd.bin", new string('x', 1000))));
        var newLayer = await FileLayer.CreateAsync(newLayerPath, CancellationToken.None);
        var config = SquashConfig.Create(new SquashConfigOptions { Final = b.Config, Base = b.Config, NewLayerDiffId = newLayer.DiffId, BaseName = "base:1" });
        var squashed = new ComposedImage(config, [.. b.Layers, newLayer]);
        var options = new ImageWriteOptions { OmitLayers = b.Layers.Count, Tags = tagged ? [ImageReference.Parse("app:squashed")] : [], TemporaryDirectory = dir.Path };

        using var written = new MemoryStream();
        await ImageArchiveWriter.WriteAsync(written, squashed, options, CancellationToken.None);
        using var opened = ImageArchiveWriter.TryOpenDockerArchive(squashed, options)!;

        opened.ShouldNotBeNull();
        opened.CanSeek.ShouldBeTrue();
        opened.Length.ShouldBe(written.Length);
        using var copy = new MemoryStream();
        await opened.CopyToAsync(copy);
        copy.ToArray().ShouldBe(written.ToArray());
        // Seeking back and reading in odd-sized pieces gives the same bytes (an HTTP client may rewind a body).
        opened.Position = 0;
        var pieces = new MemoryStream();
        var buffer = new byte[777];
        int n;
        while ((n = opened.Read(buffer, 0, buffer.Length)) > 0) pieces.Write(buffer, 0, n);
        pieces.ToArray().ShouldBe(written.ToArray());
    }

    [Fact]
    public void Opens_no_archive_stream_when_a_written_layer_is_not_a_file()
    {
        var image = TestImage.Create(1, "one");
        using var dir = new TempDir();
        using var save = ImageArchive.Open(TestArchives.WriteTar(dir.File("one.tar"), TestArchives.DockerArchive(image, ["one:1"])));
        ImageArchiveWriter.TryOpenDockerArchive(save.GetImage(), new ImageWriteOptions()).ShouldBeNull();
    }

    [Fact]
    public async Task A_partial_oci_archive_needs_the_base_descriptors()
    {
        using var dir = new TempDir();
        var image = TestImage.Create(0, baseLayers: [TestImage.LayerTar(("a", "b"))]);
        var composed = new ComposedImage(ImageConfig.Parse(image.Config), [new DescribedLayer(image.DiffIds[0], null)]);
        var error = await Should.ThrowAsync<ImageFormatException>(() => ImageArchiveWriter.WriteAsync(
            dir.File("p.tar"), composed, new ImageWriteOptions { Format = ImageArchiveFormat.OciLayout, OmitLayers = 1 }, CancellationToken.None));
        error.Message.ShouldContain("descriptor");
        File.Exists(dir.File("p.tar")).ShouldBeFalse();

        // A docker-archive needs no descriptor: the graph-driver store looks layers up by chain ID.
        await ImageArchiveWriter.WriteAsync(dir.File("p.tar"), composed, new ImageWriteOptions { OmitLayers = 1 }, CancellationToken.None);
        TestArchives.MemberNames(dir.File("p.tar")).ShouldNotContain($"{image.DiffIds[0].Hex}/layer.tar");
        DockerArchiveManifest.ParseAll(TestArchives.Member(dir.File("p.tar"), "manifest.json")).Single().Layers.ShouldBe([$"{image.DiffIds[0].Hex}/layer.tar"]);
    }

    [Theory]
    [InlineData(ImageArchiveFormat.DockerArchive, false)]
    [InlineData(ImageArchiveFormat.OciLayout, true)]
    public async Task A_failure_leaves_no_output_and_keeps_an_existing_file(ImageArchiveFormat format, bool asDirectory)
    {
        using var dir = new TempDir();
        var good = TestImage.LayerTar(("good", "1"));
        var image = TestImage.Create(0, baseLayers: [good]);
        var lying = new ComposedImage(ImageConfig.Parse(image.Config), [new BytesLayer(TestImage.LayerTar(("evil", "2")), image.DiffIds[0])]);
        var output = dir.File("out");
        if (!asDirectory)
        {
            File.WriteAllText(output, "previous");
        }

        var error = await Should.ThrowAsync<ImageFormatException>(() => ImageArchiveWriter.WriteAsync(output, lying, new ImageWriteOptions { Format = format, AsDirectory = asDirectory }, CancellationToken.None));
        error.Message.ShouldContain("digest mismatch");
        if (asDirectory)
        {
            Directory.Exists(output).ShouldBeFalse();
        }
        else
        {
            File.ReadAllText(output).ShouldBe("previous");
        }

        Directory.GetFileSystemEntries(dir.Path).Length.ShouldBe(asDirectory ? 0 : 1);
    }

    [Fact]
    public async Task Writes_the_same_bytes_twice()
    {
        using var dir = new TempDir();
        var image = TestImage.Create(2);
        using var source = ImageArchive.Open(TestArchives.WriteTar(dir.File("in.tar"), TestArchives.DockerArchive(image, ["d:1"], gzipLayers: true)));
        foreach (var format in new[] { ImageArchiveFormat.DockerArchive, ImageArchiveFormat.DockerOciArchive })
        {
            var options = new ImageWriteOptions { Format = format, Tags = Tags };
            await ImageArchiveWriter.WriteAsync(dir.File("1.tar"), source.GetImage(), options, CancellationToken.None);
            await ImageArchiveWriter.WriteAsync(dir.File("2.tar"), source.GetImage(), options, CancellationToken.None);
            File.ReadAllBytes(dir.File("1.tar")).ShouldBe(File.ReadAllBytes(dir.File("2.tar")));
        }
    }

    [Fact]
    public async Task Writes_to_a_stream_for_docker_load()
    {
        using var dir = new TempDir();
        var image = TestImage.Create(2);
        using var source = ImageArchive.Open(TestArchives.WriteTar(dir.File("in.tar"), TestArchives.DockerArchive(image, ["s:1"])));
        using var buffer = new MemoryStream();
        await ImageArchiveWriter.WriteAsync(buffer, source.GetImage(), new ImageWriteOptions { Format = ImageArchiveFormat.DockerOciArchive, Tags = Tags, TemporaryDirectory = dir.Path }, CancellationToken.None);
        Directory.GetFiles(dir.Path).Length.ShouldBe(1);
        buffer.Position = 0;
        using var reread = await ImageArchive.OpenAsync(buffer, "load body", new ImageArchiveOptions { TemporaryDirectory = dir.Path }, CancellationToken.None);
        ImageAssertions.ShouldHaveLayers(reread.GetImage("busybox:1"), image);
    }

    [Fact]
    public async Task Writes_an_image_with_the_same_layer_twice_once()
    {
        using var dir = new TempDir();
        var same = TestImage.LayerTar(("same", "x"));
        var image = TestImage.Create(0, baseLayers: [same, same]);
        var composed = new ComposedImage(ImageConfig.Parse(image.Config), [new BytesLayer(same), new BytesLayer(same)]);
        foreach (var format in new[] { ImageArchiveFormat.DockerArchive, ImageArchiveFormat.OciLayout })
        {
            var path = dir.File($"{format}.tar");
            await ImageArchiveWriter.WriteAsync(path, composed, new ImageWriteOptions { Format = format }, CancellationToken.None);
            using var reread = ImageArchive.Open(path);
            ImageAssertions.ShouldHaveLayers(reread.GetImage(), image);
        }
    }

    [Fact]
    public async Task Reports_layer_bytes_as_they_stream()
    {
        using var dir = new TempDir();
        var image = TestImage.Create(3);
        using var source = ImageArchive.Open(TestArchives.WriteTar(dir.File("in.tar"), TestArchives.DockerArchive(image, ["p:1"], gzipLayers: true)));
        var progress = new Recorder();
        await ImageArchiveWriter.WriteAsync(dir.File("out.tar"), source.GetImage(), new ImageWriteOptions { Progress = progress }, CancellationToken.None);
        progress.Last.ShouldBe(image.Layers.Sum(l => (long)l.Length));
    }

    [Fact]
    public async Task Refuses_digest_only_names()
    {
        using var dir = new TempDir();
        var image = TestImage.Create(0);
        var composed = new ComposedImage(ImageConfig.Parse(image.Config), []);
        var byDigest = ImageReference.Parse("app@sha256:" + new string('a', 64));
        await Should.ThrowAsync<ArgumentException>(() => ImageArchiveWriter.WriteAsync(dir.File("x.tar"), composed, new ImageWriteOptions { Tags = [byDigest] }, CancellationToken.None));
        File.Exists(dir.File("x.tar")).ShouldBeFalse();
        var error = await Should.ThrowAsync<ImageFormatException>(() => ImageArchiveWriter.WriteAsync(dir.File("no/such/x.tar"), composed, new ImageWriteOptions(), CancellationToken.None));
        error.Message.ShouldContain("does not exist");
    }

    [Fact]
    public async Task Writes_and_finds_an_image_without_layers_by_manifest_digest()
    {
        using var dir = new TempDir();
        var image = TestImage.Create(0);
        var composed = new ComposedImage(ImageConfig.Parse(image.Config), []);
        var result = await ImageArchiveWriter.WriteAsync(dir.File("x.tar"), composed, new ImageWriteOptions { Format = ImageArchiveFormat.OciLayout }, CancellationToken.None);
        using var archive = ImageArchive.Open(dir.File("x.tar"));
        var read = archive.GetImage(result.Manifest!.Digest.ToString());
        read.Layers.ShouldBeEmpty();
        read.Names.ShouldBeEmpty();
        archive.GetImage(result.Manifest.Digest.Hex[..12]).ShouldBeSameAs(read);
    }

    private sealed class Recorder : IProgress<long>
    {
        public long Last { get; private set; }

        public void Report(long value) => Last = value;
    }

    /// <summary>A layer held in memory (tests only), claiming a diff ID that may be a lie.</summary>
    private sealed class BytesLayer(byte[] tar, Digest? diffId = null) : ILayer
    {
        public Digest DiffId { get; } = diffId ?? Digest.Compute(tar);

        public Descriptor? Descriptor => null;

        public Stream Open(CancellationToken cancellationToken) => new MemoryStream(tar, writable: false);
    }
}
