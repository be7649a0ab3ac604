using System.Text;
using LayerTool.Image;
using LayerTool.Image.Formats;

namespace LayerTool.Image.Tests.Formats;

public class ImageArchiveErrorTests
{
    private static void ReadLayer(ArchiveImage image, int index)
    {
        using var stream = image.Layers[index].Open(CancellationToken.None);
        TestArchives.ReadAll(stream);
    }

    private static byte[] Flip(byte[] data, int at)
    {
        var copy = data.ToArray();
        copy[at] ^= 0x55;
        return copy;
    }

    [Fact]
    public void A_layer_with_other_bytes_fails_its_diff_id_check_at_the_end()
    {
        using var dir = new TempDir();
        var image = TestImage.Create(2);
        var members = TestArchives.DockerArchive(image, ["t:1"]);
        var i = members.FindLastIndex(m => m.Name.EndsWith("/layer.tar", StringComparison.Ordinal));
        members[i] = (members[i].Name, Flip(members[i].Data, 600));
        using var archive = ImageArchive.Open(TestArchives.WriteTar(dir.File("a.tar"), members));

        ReadLayer(archive.GetImage(), 0);
        var error = Should.Throw<ImageFormatException>(() => ReadLayer(archive.GetImage(), 1));
        error.Message.ShouldContain("digest mismatch");
        error.Message.ShouldContain(image.DiffIds[1].ToString());
        error.Message.ShouldContain("layer 2 of 2");
    }

    [Fact]
    public void An_oci_blob_with_other_bytes_fails_its_digest_check()
    {
        using var dir = new TempDir();
        var image = TestImage.Create(1);
        var members = TestArchives.OciLayout([(image, ["t:1"])], gzipLayers: true);
        var layerDigest = Digest.Compute(TestImage.Gzip(image.Layers[0]));
        var i = members.FindIndex(m => m.Name == $"blobs/sha256/{layerDigest.Hex}");
        var tampered = members[i].Data.ToArray();
        tampered[^5] ^= 0x01; // the gzip trailer: decompression may or may not notice, the digest does
        members[i] = (members[i].Name, tampered);
        using var archive = ImageArchive.Open(TestArchives.WriteTar(dir.File("a.tar"), members));

        var error = Should.Throw<Exception>(() => ReadLayer(archive.GetImage(), 0));
        (error is ImageFormatException || error is InvalidDataException).ShouldBeTrue(error.ToString());
    }

    [Fact]
    public void A_config_whose_bytes_do_not_match_its_name_is_refused()
    {
        using var dir = new TempDir();
        var image = TestImage.Create(1);
        var members = TestArchives.DockerArchive(image, ["t:1"]);
        var i = members.FindIndex(m => m.Name == $"{image.ConfigDigest.Hex}.json");
        members[i] = (members[i].Name, Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(members[i].Data).Replace("amd64", "arm64", StringComparison.Ordinal)));
        var error = Should.Throw<ImageFormatException>(() => ImageArchive.Open(TestArchives.WriteTar(dir.File("a.tar"), members)));
        error.Message.ShouldContain("digest mismatch");
    }

    [Fact]
    public void An_oci_manifest_whose_bytes_do_not_match_is_refused()
    {
        using var dir = new TempDir();
        var image = TestImage.Create(1);
        var members = TestArchives.OciLayout([(image, ["t:1"])]);
        var i = members.FindIndex(m => Encoding.UTF8.GetString(m.Data).Contains("\"layers\":[", StringComparison.Ordinal));
        members[i] = (members[i].Name, Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(members[i].Data) + " "));
        var error = Should.Throw<ImageFormatException>(() => ImageArchive.Open(TestArchives.WriteTar(dir.File("a.tar"), members)));
        error.Message.ShouldContain("manifest", Case.Sensitive, error.Message);
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(0.9)]
    [InlineData(0.3)]
    public void A_truncated_archive_is_refused(double keep)
    {
        using var dir = new TempDir();
        var image = TestImage.Create(3);
        var path = TestArchives.WriteTar(dir.File("a.tar"), TestArchives.DockerArchive(image, ["t:1"]));
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(int)(bytes.Length * keep)]);
        var error = Should.Throw<ImageFormatException>(() => ImageArchive.Open(path));
        error.Message.ShouldContain("truncated");
    }

    [Fact]
    public void A_missing_layer_member_fails_when_the_layer_is_opened()
    {
        using var dir = new TempDir();
        var image = TestImage.Create(2);
        var members = TestArchives.DockerArchive(image, ["t:1"]);
        var layer = members.First(m => m.Name.EndsWith("/layer.tar", StringComparison.Ordinal)).Name;
        members.RemoveAll(m => m.Name == layer);
        using var archive = ImageArchive.Open(TestArchives.WriteTar(dir.File("a.tar"), members));
        var error = Should.Throw<ImageFormatException>(() => ReadLayer(archive.GetImage(), 0));
        error.Message.ShouldContain($"no member '{layer}'");
    }

    [Fact]
    public void A_missing_config_is_refused()
    {
        using var dir = new TempDir();
        var image = TestImage.Create(1);
        var members = TestArchives.DockerArchive(image, ["t:1"]);
        members.RemoveAll(m => m.Name == $"{image.ConfigDigest.Hex}.json");
        var error = Should.Throw<ImageFormatException>(() => ImageArchive.Open(TestArchives.WriteTar(dir.File("a.tar"), members)));
        error.Message.ShouldContain($"no member '{image.ConfigDigest.Hex}.json'");
    }

    [Fact]
    public void A_missing_oci_blob_is_refused()
    {
        using var dir = new TempDir();
        var image = TestImage.Create(1);
        var members = TestArchives.OciLayout([(image, ["t:1"])]);
        members.RemoveAll(m => m.Name == $"blobs/sha256/{image.ConfigDigest.Hex}");
        var error = Should.Throw<ImageFormatException>(() => ImageArchive.Open(TestArchives.WriteDirectory(dir.File("layout"), members)));
        error.Message.ShouldContain("config");
        error.Message.ShouldContain("missing");
    }

    [Fact]
    public void A_diff_ids_count_mismatch_is_refused()
    {
        using var dir = new TempDir();
        var image = TestImage.Create(2);
        var members = TestArchives.DockerArchive(image, ["t:1"]);
        var i = members.FindIndex(m => m.Name == "manifest.json");
        var text = Encoding.UTF8.GetString(members[i].Data);
        members[i] = (members[i].Name, Encoding.UTF8.GetBytes(text.Replace("\"Layers\":[", "\"Layers\":[\"extra/layer.tar\",", StringComparison.Ordinal)));
        var error = Should.Throw<ImageFormatException>(() => ImageArchive.Open(TestArchives.WriteTar(dir.File("a.tar"), members)));
        error.Message.ShouldContain("lists 3 layers");
        error.Message.ShouldContain("has 2");
    }

    [Fact]
    public void A_corrupt_tar_header_is_refused()
    {
        using var dir = new TempDir();
        var path = TestArchives.WriteTar(dir.File("a.tar"), TestArchives.DockerArchive(TestImage.Create(1), ["t:1"]));
        var bytes = File.ReadAllBytes(path);
        bytes[5] ^= 0x20;
        File.WriteAllBytes(path, bytes);
        Should.Throw<ImageFormatException>(() => ImageArchive.Open(path)).Message.ShouldContain("tar");
    }

    [Fact]
    public void Files_that_are_not_image_archives_are_refused()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("empty"), []);
        Should.Throw<ImageFormatException>(() => ImageArchive.Open(dir.File("empty"))).Message.ShouldContain("empty");
        File.WriteAllText(dir.File("text"), new string('x', 2000));
        Should.Throw<ImageFormatException>(() => ImageArchive.Open(dir.File("text"))).Message.ShouldContain("not a tar archive");
        TestArchives.WriteTar(dir.File("plain.tar"), [("hello.txt", "hi"u8.ToArray())]);
        Should.Throw<ImageFormatException>(() => ImageArchive.Open(dir.File("plain.tar"))).Message.ShouldContain("no manifest.json");
        Should.Throw<ImageFormatException>(() => ImageArchive.Open(dir.File("missing"))).Message.ShouldContain("no such file");
        TestArchives.WriteTar(dir.File("badjson.tar"), [("manifest.json", "[{"u8.ToArray())]);
        Should.Throw<ImageFormatException>(() => ImageArchive.Open(dir.File("badjson.tar"))).Message.ShouldContain("invalid JSON");
    }

    [Fact]
    public void A_zstd_layer_gets_a_clear_error()
    {
        using var dir = new TempDir();
        var zstd = new byte[] { 0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0 };
        var image = TestImage.Create(0, baseLayers: [zstd]);
        using var archive = ImageArchive.Open(TestArchives.WriteTar(dir.File("a.tar"), TestArchives.DockerArchive(image, ["z:1"])));
        var error = Should.Throw<ImageFormatException>(() => ReadLayer(archive.GetImage(), 0));
        error.Message.ShouldContain("zstd");
        error.Message.ShouldContain("not");
    }

    [Fact]
    public void A_layer_longer_than_its_descriptor_fails_early()
    {
        var data = new byte[100];
        using var stream = new VerifyingStream(new MemoryStream(data), Digest.Compute(data), 50, "blob");
        Should.Throw<ImageFormatException>(() => TestArchives.ReadAll(stream)).Message.ShouldContain("more than the expected 50 bytes");
    }

    [Fact]
    public void A_verifying_stream_passes_good_bytes()
    {
        var data = Encoding.ASCII.GetBytes("hello");
        using var stream = new VerifyingStream(new MemoryStream(data), Digest.Compute(data), data.Length, "blob");
        TestArchives.ReadAll(stream).ShouldBe(data);
        stream.Verified.ShouldBeTrue();
    }
}
