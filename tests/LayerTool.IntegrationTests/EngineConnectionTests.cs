using LayerTool.Build;
using LayerTool.Docker;

namespace LayerTool.IntegrationTests;

[Collection(EngineCollection.Name)]
public sealed class EngineConnectionTests(EngineFixture engine)
{
    [Fact]
    public void Negotiates_an_api_version_no_newer_than_the_engine_speaks()
    {
        engine.Connection.ApiVersion.ShouldBeLessThanOrEqualTo(DockerConnection.ClientMaxApiVersion);
        engine.Connection.ApiVersion.ShouldBeGreaterThanOrEqualTo(new Version(1, 41));
        engine.Connection.ServerVersion.ShouldNotBeNullOrWhiteSpace();
    }

    [Fact]
    public async Task An_engine_that_does_not_answer_is_a_clear_error()
    {
        var missing = new Uri("unix:///run/layertool/no-such-engine.sock");
        var e = await Should.ThrowAsync<EngineException>(() => DockerConnection.ConnectAsync(new EngineSettings(missing), CancellationToken.None));
        e.Message.ShouldContain("cannot reach the Docker engine");
    }

    [Fact]
    public async Task The_offline_base_images_exist()
    {
        var ids = await engine.DockerAsync(["image", "inspect", "--format", "{{.Id}}", "busybox:latest", "debian:bookworm"]);
        ids.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length.ShouldBe(2);
    }
}
