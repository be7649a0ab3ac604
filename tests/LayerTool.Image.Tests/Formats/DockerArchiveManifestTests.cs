using System.Text;
using LayerTool.Image.Formats;

namespace LayerTool.Image.Tests.Formats;

public class DockerArchiveManifestTests
{
    [Fact]
    public void Parent_is_written_only_when_given_and_read_back()
    {
        var bytes = DockerArchiveManifest.ToBytes([
            new DockerArchiveManifest("a.json", [], ["l1/layer.tar"]),
            new DockerArchiveManifest("b.json", ["x:1"], ["l1/layer.tar"], "sha256:" + new string('a', 64)),
        ]);

        Encoding.UTF8.GetString(bytes).ShouldBe(
            "[{\"Config\":\"a.json\",\"RepoTags\":null,\"Layers\":[\"l1/layer.tar\"]}," +
            "{\"Config\":\"b.json\",\"RepoTags\":[\"x:1\"],\"Layers\":[\"l1/layer.tar\"],\"Parent\":\"sha256:" + new string('a', 64) + "\"}]");
        var read = DockerArchiveManifest.ParseAll(bytes);
        read[0].Parent.ShouldBeNull();
        read[1].Parent.ShouldBe("sha256:" + new string('a', 64));
        read[1].RepoTags.ShouldBe(["x:1"]);
    }
}
