using LayerTool.Docker.Dind;
using LayerTool.Dockerfile.Model;

namespace LayerTool.IntegrationTests.Dind;

/// <summary>Which images a dind build is given from the outer engine (no engine needed).</summary>
public sealed class DindBaseImagesTests
{
    [Theory]
    [InlineData("FROM busybox\nRUN true\n", "busybox")]
    [InlineData("FROM scratch\nCOPY a /a\n", "")]
    [InlineData("ARG BASE=debian:bookworm\nFROM $BASE\n", "debian:bookworm")]
    [InlineData("ARG V=1.36\nARG IMG=busybox:${V}\nFROM ${IMG}\n", "busybox:1.36")]
    [InlineData("FROM busybox AS build\nRUN true\nFROM build\nCOPY --from=build /a /a\nCOPY --from=alpine:3 /b /b\n", "busybox alpine:3")]
    [InlineData("FROM debian:bookworm\nRUN true\nTAG app:base\nRUN true\nCOMPRESS app:base\n", "debian:bookworm")]
    [InlineData("FROM debian:bookworm\nTAG app\nRUN true\nCOMPRESS app\n", "debian:bookworm")]
    [InlineData("FROM busybox\nRUN true\nCOMPRESS debian:bookworm\n", "busybox debian:bookworm")]
    [InlineData("FROM busybox AS a\nFROM busybox AS b\nFROM a\n", "busybox")]
    public void Lists_the_images_from_outside_the_file(string dockerfile, string expected)
    {
        var images = DindBaseImages.Of(DockerfileModel.Parse(dockerfile));
        string.Join(' ', images).ShouldBe(expected);
    }

    [Fact]
    public void Build_args_override_meta_arg_defaults()
    {
        var model = DockerfileModel.Parse("ARG BASE=debian:bookworm\nFROM $BASE\n");
        DindBaseImages.Of(model, new Dictionary<string, string> { ["BASE"] = "busybox:latest" }).ShouldBe(["busybox:latest"]);
    }
}
