using System.Text;
using LayerTool.Image;
using LayerTool.Image.Formats;

namespace LayerTool.Image.Tests.Formats;

public class ImageArchiveReadTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Reads_a_docker_archive(bool gzipLayers)
    {
        using var dir = new TempDir();
        var image = TestImage.Create(3);
        var path = TestArchives.WriteTar(dir.File("save.tar"), TestArchives.DockerArchive(image, ["busybox:latest", "example.com/team/app:v1"], gzipLayers));

        using var archive = ImageArchive.Open(path);
        archive.Format.ShouldBe(ImageArchiveFormat.DockerArchive);
        var read = archive.GetImage();
        ImageAssertions.ShouldHaveLayers(read, image);
        read.Names.ShouldBe(["busybox:latest", "example.com/team/app:v1"]);
        read.References.Select(r => r.ToString()).ShouldBe(["docker.io/library/busybox:latest", "example.com/team/app:v1"]);
        archive.GetImage("busybox").ShouldBeSameAs(read);
        archive.GetImage("docker.io/library/busybox:latest").ShouldBeSameAs(read);
        archive.GetImage(image.ConfigDigest.Hex[..12]).ShouldBeSameAs(read);
        if (gzipLayers)
        {
            read.Layers[0].Descriptor.ShouldBeNull("a compressed legacy layer's blob digest is unknown without reading it");
        }
        else
        {
            read.Layers[0].Descriptor.ShouldBe(new Descriptor(MediaTypes.OciLayer, image.DiffIds[0], image.Layers[0].Length));
        }
    }

    [Fact]
    public void Reads_a_docker_archive_whose_layer_is_a_symlink_to_another()
    {
        using var dir = new TempDir();
        var shared = TestImage.LayerTar(("same.txt", "same"));
        var image = TestImage.Create(0, baseLayers: [shared, shared]);
        var members = TestArchives.DockerArchive(image, ["dup:1"]);
        var layerPaths = members.Where(m => m.Name.EndsWith("/layer.tar", StringComparison.Ordinal)).Select(m => m.Name).ToList();
        var first = layerPaths[0].Split('/')[0];
        var path = TestArchives.WriteTar(dir.File("save.tar"), members, new Dictionary<string, string> { [layerPaths[1]] = $"../{first}/layer.tar" });

        using var archive = ImageArchive.Open(path);
        ImageAssertions.ShouldHaveLayers(archive.GetImage("dup:1"), image);
    }

    [Fact]
    public void Reads_an_extracted_docker_save_directory()
    {
        using var dir = new TempDir();
        var image = TestImage.Create(2);
        var path = TestArchives.WriteDirectory(dir.File("extracted"), TestArchives.DockerArchive(image, ["x:1"]));
        using var archive = ImageArchive.Open(path);
        ImageAssertions.ShouldHaveLayers(archive.GetImage("x:1"), image);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Reads_a_docker_25_save_with_oci_layout_and_manifest_json(bool gzipLayers)
    {
        using var dir = new TempDir();
        var image = TestImage.Create(2);
        var path = TestArchives.WriteTar(dir.File("save.tar"), TestArchives.OciLayout([(image, ["app:v1", "app:latest"])], gzipLayers, withManifestJson: true));

        using var archive = ImageArchive.Open(path);
        archive.Format.ShouldBe(ImageArchiveFormat.DockerOciArchive);
        archive.Images.Count.ShouldBe(1);
        var read = archive.GetImage("app:v1");
        archive.GetImage("docker.io/library/app:latest").ShouldBeSameAs(read);
        ImageAssertions.ShouldHaveLayers(read, image);
        read.Names.ShouldContain("docker.io/library/app:v1");
        read.Names.ShouldContain("app:latest");
        read.ManifestDescriptor.ShouldNotBeNull();
        read.Manifest!.Layers.Count.ShouldBe(2);
        read.Layers[0].Descriptor!.MediaType.ShouldBe(gzipLayers ? MediaTypes.OciLayerGzip : MediaTypes.OciLayer);
        if (gzipLayers)
        {
            read.Layers[0].Descriptor!.Digest.ShouldNotBe(read.Layers[0].DiffId);
        }
    }

    [Fact]
    public void Reads_the_docker_archive_side_of_a_docker_25_save_when_only_manifest_json_is_there()
    {
        using var dir = new TempDir();
        var image = TestImage.Create(2);
        var members = TestArchives.OciLayout([(image, ["app:v1"])], gzipLayers: true, withManifestJson: true)
            .Where(m => m.Name is not ("index.json" or "oci-layout")).ToList();
        var path = TestArchives.WriteTar(dir.File("save.tar"), members);

        using var archive = ImageArchive.Open(path);
        archive.Format.ShouldBe(ImageArchiveFormat.DockerArchive);
        var read = archive.GetImage("app:v1");
        ImageAssertions.ShouldHaveLayers(read, image);
        read.Layers[1].Descriptor!.MediaType.ShouldBe(MediaTypes.OciLayerGzip);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Reads_an_oci_layout_directory_or_tar(bool asDirectory)
    {
        using var dir = new TempDir();
        var one = TestImage.Create(1, "one");
        var two = TestImage.Create(2, "two");
        var members = TestArchives.OciLayout([(one, ["one:1"]), (two, ["two:2"])], gzipLayers: true);
        var path = asDirectory ? TestArchives.WriteDirectory(dir.File("layout"), members) : TestArchives.WriteTar(dir.File("layout.tar"), members);

        using var archive = ImageArchive.Open(path);
        archive.Format.ShouldBe(ImageArchiveFormat.OciLayout);
        archive.Images.Count.ShouldBe(2);
        ImageAssertions.ShouldHaveLayers(archive.GetImage("one:1"), one);
        ImageAssertions.ShouldHaveLayers(archive.GetImage("two:2"), two);
        var error = Should.Throw<ImageFormatException>(() => archive.GetImage());
        error.Message.ShouldContain("2 images");
        Should.Throw<ImageFormatException>(() => archive.GetImage("three:3")).Message.ShouldContain("no image 'three:3'");
    }

    [Fact]
    public void Chooses_linux_amd64_from_a_multi_platform_index_or_the_platform_asked_for()
    {
        using var dir = new TempDir();
        var amd64 = TestImage.Create(1, "x86", "amd64");
        var arm64 = TestImage.Create(2, "arm", "arm64");
        var path = TestArchives.WriteTar(dir.File("multi.tar"), TestArchives.OciLayout([(arm64, []), (amd64, [])], nestedIndex: true));

        using (var archive = ImageArchive.Open(path))
        {
            var image = archive.GetImage("multi");
            image.Config.Architecture.ShouldBe("amd64");
            ImageAssertions.ShouldHaveLayers(image, amd64);
        }

        using (var archive = ImageArchive.Open(path, new ImageArchiveOptions { Platform = new Platform("arm64", "linux") }))
        {
            ImageAssertions.ShouldHaveLayers(archive.GetImage(), arm64);
        }

        var error = Should.Throw<ImageFormatException>(() => ImageArchive.Open(path, new ImageArchiveOptions { Platform = new Platform("s390x", "linux") }));
        error.Message.ShouldContain("linux/s390x");
        error.Message.ShouldContain("linux/arm64");
    }

    [Fact]
    public void Chooses_the_only_platform_whose_blobs_are_present()
    {
        using var dir = new TempDir();
        var amd64 = TestImage.Create(1, "x86", "amd64");
        var arm64 = TestImage.Create(1, "arm", "arm64");
        var members = TestArchives.OciLayout([(arm64, []), (amd64, [])], nestedIndex: true);

        // A containerd-store save of a multi-platform image holds only the local platform's blobs.
        var armManifest = Digest.Compute(members.Single(m => m.Data.AsSpan().IndexOf("\"layers\""u8) >= 0 && System.Text.Encoding.UTF8.GetString(m.Data).Contains(arm64.ConfigDigest.Hex, StringComparison.Ordinal)).Data);
        members.RemoveAll(m => m.Name == $"blobs/sha256/{armManifest.Hex}");
        var path = TestArchives.WriteTar(dir.File("multi.tar"), members);

        using var archive = ImageArchive.Open(path, new ImageArchiveOptions { Platform = new Platform("arm64", "linux") });
        ImageAssertions.ShouldHaveLayers(archive.GetImage(), amd64);
    }

    [Fact]
    public async Task Reads_a_non_seekable_stream_by_spilling_it_and_cleans_up()
    {
        using var dir = new TempDir();
        var image = TestImage.Create(2);
        var path = TestArchives.WriteTar(dir.File("save.tar"), TestArchives.DockerArchive(image, ["s:1"]));
        var spillDir = Directory.CreateDirectory(dir.File("spill")).FullName;

        await using (var stream = new NonSeekableStream(File.ReadAllBytes(path)))
        {
            using var archive = await ImageArchive.OpenAsync(stream, "docker save", new ImageArchiveOptions { TemporaryDirectory = spillDir }, CancellationToken.None);
            Directory.GetFiles(spillDir).Length.ShouldBe(1);
            ImageAssertions.ShouldHaveLayers(archive.GetImage("s:1"), image);
        }

        Directory.GetFiles(spillDir).ShouldBeEmpty();
    }

    [Fact]
    public void Reads_a_gzip_compressed_archive()
    {
        using var dir = new TempDir();
        var image = TestImage.Create(1);
        var path = TestArchives.WriteTar(dir.File("save.tar"), TestArchives.DockerArchive(image, ["g:1"]));
        File.WriteAllBytes(dir.File("save.tar.gz"), TestImage.Gzip(File.ReadAllBytes(path)));
        using var archive = ImageArchive.Open(dir.File("save.tar.gz"));
        ImageAssertions.ShouldHaveLayers(archive.GetImage(), image);
    }

    [Fact]
    public void Keeps_unknown_config_fields()
    {
        using var dir = new TempDir();
        var image = TestImage.Create(1);
        var path = TestArchives.WriteTar(dir.File("save.tar"), TestArchives.DockerArchive(image, ["u:1"]));
        using var archive = ImageArchive.Open(path);
        var config = archive.GetImage().Config;
        config.ToJson()["moby.extra"]!["unknown"]!.GetValue<int>().ShouldBe(1);
        config.Config.Env.ShouldBe(["PATH=/usr/bin", "SEED=a"]);
        config.Config.ExposedPorts.ShouldBe(["80/tcp"]);
        config.History.Count(h => !h.EmptyLayer).ShouldBe(1);
    }

    [Theory]
    [InlineData(System.Formats.Tar.TarEntryFormat.Gnu)]
    [InlineData(System.Formats.Tar.TarEntryFormat.Ustar)]
    [InlineData(System.Formats.Tar.TarEntryFormat.Pax)]
    public void Reads_gnu_ustar_and_pax_archives_with_long_member_names(System.Formats.Tar.TarEntryFormat format)
    {
        using var dir = new TempDir();
        var image = TestImage.Create(1);
        var members = TestArchives.DockerArchive(image, ["long:1"]);
        var layer = members.Single(m => m.Name.EndsWith("/layer.tar", StringComparison.Ordinal));
        var longName = (format == System.Formats.Tar.TarEntryFormat.Ustar ? new string('u', 60) + "/" + new string('v', 50) + "/" : new string('d', 120) + "/") + "layer.tar";
        members[members.IndexOf(layer)] = (longName, layer.Data);
        var manifest = members.FindIndex(m => m.Name == "manifest.json");
        members[manifest] = ("manifest.json", Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(members[manifest].Data).Replace(layer.Name, "./" + longName, StringComparison.Ordinal)));
        using var archive = ImageArchive.Open(TestArchives.WriteTar(dir.File("a.tar"), members, format: format));
        ImageAssertions.ShouldHaveLayers(archive.GetImage(), image);
    }

    [Fact]
    public void A_save_without_layer_blobs_still_gives_the_base_descriptors()
    {
        // moby #49473: a containerd-store save can lack layer blobs; the manifest still names them exactly.
        using var dir = new TempDir();
        var image = TestImage.Create(2);
        var members = TestArchives.OciLayout([(image, ["base:1"])], gzipLayers: true, withManifestJson: true);
        var layerBlobs = image.Layers.Select(l => $"blobs/sha256/{Digest.Compute(TestImage.Gzip(l)).Hex}").ToHashSet();
        members.RemoveAll(m => layerBlobs.Contains(m.Name));
        using var archive = ImageArchive.Open(TestArchives.WriteTar(dir.File("a.tar"), members));
        var read = archive.GetImage("base:1");
        read.Layers.Select(l => l.Descriptor).ShouldBe(read.Manifest!.Layers);
        read.Layers.Select(l => l.DiffId).ShouldBe(image.DiffIds);
        Should.Throw<ImageFormatException>(() => read.Layers[0].Open(CancellationToken.None)).Message.ShouldContain("no member");
    }

    [Fact]
    public void Reads_index_entries_without_a_media_type()
    {
        using var dir = new TempDir();
        var image = TestImage.Create(1);
        var members = TestArchives.OciLayout([(image, ["nomt:1"])]);
        var i = members.FindIndex(m => m.Name == "index.json");
        var index = System.Text.Json.Nodes.JsonNode.Parse(members[i].Data)!;
        index["manifests"]![0]!.AsObject().Remove("mediaType");
        members[i] = ("index.json", Encoding.UTF8.GetBytes(index.ToJsonString()));
        using var archive = ImageArchive.Open(TestArchives.WriteDirectory(dir.File("layout"), members));
        ImageAssertions.ShouldHaveLayers(archive.GetImage("nomt:1"), image);
    }

    [Fact]
    public void Reads_a_layer_gzipped_as_several_members()
    {
        // pigz and some registries write concatenated gzip members; the diff ID covers them all.
        using var dir = new TempDir();
        var tar = TestImage.LayerTar(("a.txt", new string('a', 5000)), ("b.txt", "b"));
        var blob = TestImage.Gzip(tar[..1024]).Concat(TestImage.Gzip(tar[1024..])).ToArray();
        var image = TestImage.Create(0, baseLayers: [tar]);
        var members = TestArchives.DockerArchive(image, ["multi:1"]);
        var i = members.FindIndex(m => m.Name.EndsWith("/layer.tar", StringComparison.Ordinal));
        members[i] = (members[i].Name, blob);
        using var archive = ImageArchive.Open(TestArchives.WriteTar(dir.File("a.tar"), members));
        ImageAssertions.ShouldHaveLayers(archive.GetImage(), image);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Reads_a_layout_tarred_with_its_directory(bool asDirectory)
    {
        using var dir = new TempDir();
        var image = TestImage.Create(1);
        var members = TestArchives.OciLayout([(image, ["wrapped:1"])]).Select(m => ("layout/" + m.Name, m.Data)).ToList();
        var path = asDirectory ? TestArchives.WriteDirectory(dir.File("outer"), members) : TestArchives.WriteTar(dir.File("a.tar"), members);
        using var archive = ImageArchive.Open(path);
        archive.Format.ShouldBe(ImageArchiveFormat.OciLayout);
        ImageAssertions.ShouldHaveLayers(archive.GetImage("wrapped:1"), image);
    }

    private sealed class NonSeekableStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }
}
