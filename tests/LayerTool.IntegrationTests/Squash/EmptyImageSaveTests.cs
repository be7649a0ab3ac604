using Docker.DotNet.Models;
using LayerTool.Docker.Images;
using LayerTool.Image.Formats;

namespace LayerTool.IntegrationTests.Squash;

/// <summary>The archive written for an image without layers (which the engine refuses to save) reads back as that image.</summary>
public sealed class EmptyImageSaveTests
{
    [Fact]
    public async Task The_archive_of_an_image_without_layers_holds_its_config_and_manifest()
    {
        var created = new DateTime(2026, 12, 7, 8, 0, 0, DateTimeKind.Utc);
        var image = new ImageInspectResponse
        {
            ID = "sha256:" + new string('a', 64),
            Architecture = "amd64",
            Os = "linux",
            Created = created,
            RepoTags = ["layertool-test/empty:1"],
            Config = new DockerOCIImageConfig { Env = ["A=1"], Cmd = ["sh"], Labels = new Dictionary<string, string> { ["k"] = "v" } },
        };
        var history = new[] { new ImageHistoryResponse { Created = created, CreatedBy = "/bin/sh -c #(nop)  ENV A=1" } };

        using var stream = EmptyImageSave.Archive(image, history);
        using var archive = await ImageArchive.OpenAsync(stream, "the empty image's archive", null, CancellationToken.None);
        var read = archive.GetImage("layertool-test/empty:1");
        read.Layers.ShouldBeEmpty();
        read.Config.Config.Env.ShouldBe(["A=1"]);
        read.Config.Config.Cmd.ShouldBe(["sh"]);
        read.Config.History.Single().CreatedBy.ShouldBe("/bin/sh -c #(nop)  ENV A=1");
        read.Config.History.Single().EmptyLayer.ShouldBeTrue();
    }
}
