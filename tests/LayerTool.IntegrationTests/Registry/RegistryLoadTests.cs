using LayerTool.Docker.Images;
using LayerTool.Image;
using LayerTool.Image.Formats;

namespace LayerTool.IntegrationTests.Registry;

/// <summary><c>pull --load</c> against the real engine: only the layers the engine lacks are sent.</summary>
[Collection(EngineCollection.Name)]
public sealed class RegistryLoadTests(EngineFixture engine) : IAsyncLifetime
{
    private RegistryServer _registry = null!;
    private readonly RegistryHarness _h = new() { DockerHost = engine.DockerHost };

    public async Task InitializeAsync() => _registry = await RegistryServer.StartAsync();

    public async Task DisposeAsync()
    {
        await _registry.DisposeAsync();
        _h.Dispose();
    }

    [Fact]
    public async Task Pull_load_sends_only_the_layers_the_engine_lacks()
    {
        // busybox (which the engine has) plus two new layers, pushed from an archive the engine never saw.
        var extra = await _h.MakeImageAsync("load", layers: 2);
        using var busybox = await EngineImageArchive.OpenAsync(new DockerImageEngine(engine.Connection), "busybox:latest", null, CancellationToken.None);
        using var generated = ImageArchive.Open(extra.Archive);
        var baseImage = busybox.GetImage();
        var layers = baseImage.Layers.Concat(generated.GetImage().Layers).ToList();
        var config = baseImage.Config.WithDiffIds(layers.Select(l => l.DiffId)).Edit(json =>
        {
            var history = (System.Text.Json.Nodes.JsonArray)json["history"]!;
            history.Add(new System.Text.Json.Nodes.JsonObject { ["created_by"] = "layer a" });
            history.Add(new System.Text.Json.Nodes.JsonObject { ["created_by"] = "layer b" });
        });
        var archive = Path.Combine(_h.Root, "combined.tar");
        await ImageArchiveWriter.WriteAsync(archive, new ComposedImage(config, layers), new ImageWriteOptions(), CancellationToken.None);
        var reference = $"{_registry.Host}/load/app:{Guid.NewGuid():N}";
        await _h.OkAsync("push", archive, reference);
        try
        {
            var result = await _h.OkAsync("pull", reference, "--load");
            result.Err.ShouldContain($"2 of {layers.Count} layers sent");
            var loaded = await new DockerImageEngine(engine.Connection).TryInspectImageAsync(reference, CancellationToken.None);
            loaded.ShouldNotBeNull();
            loaded.Id.ShouldBe(config.Digest.ToString());
            loaded.DiffIds.ShouldBe(layers.Select(l => l.DiffId.ToString()).ToList());

            // Again: the engine has it all; nothing is sent.
            (await _h.OkAsync("pull", reference, "--load")).Err.ShouldContain($"0 of {layers.Count} layers sent");
        }
        finally
        {
            await new DockerImageEngine(engine.Connection).RemoveImageAsync(reference, CancellationToken.None);
        }
    }
}
