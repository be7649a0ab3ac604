using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using LayerTool.Image;

namespace LayerTool.Registry.Tests;

/// <summary>The manifest a push makes for an image that has none of its own (a squash result: a pulled base plus a new layer).</summary>
public class PusherTests
{
    [Theory]
    [InlineData(MediaTypes.OciLayerGzip, MediaTypes.OciManifest, MediaTypes.OciLayerGzip, MediaTypes.OciConfig)]
    [InlineData(MediaTypes.DockerLayerGzip, MediaTypes.DockerManifest, MediaTypes.DockerLayerGzip, MediaTypes.DockerConfig)]
    public async Task A_composed_image_follows_its_base_layers_family_and_finds_the_base_blob_in_place(
        string baseType, string manifestType, string newLayerType, string configType)
    {
        using var dir = new TempDir();
        // The base layer as pulled: a stored blob in the cache, which the registry has (HEAD 200), so it is never read.
        var baseBlob = Encoding.UTF8.GetBytes("the base layer's gzip blob");
        var basePath = Path.Combine(dir.Path, "base.blob");
        await File.WriteAllBytesAsync(basePath, baseBlob);
        var baseDescriptor = new Descriptor(baseType, Digest.Compute(baseBlob), baseBlob.Length);
        var baseLayer = new CachedLayer(basePath, baseDescriptor, Digest.Compute("base tar"u8.ToArray()), "base");
        // The new layer: an uncompressed tar in a file, gzipped on the way to the registry.
        var newTar = Encoding.UTF8.GetBytes("the squash's new layer tar");
        var newPath = Path.Combine(dir.Path, "new.tar");
        await File.WriteAllBytesAsync(newPath, newTar);
        var newLayer = new FileLayer(newPath, Digest.Compute(newTar));
        var config = ImageConfig.Parse(Encoding.UTF8.GetBytes(
            $$$"""{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["{{{baseLayer.DiffId}}}","{{{newLayer.DiffId}}}"]}}"""));

        byte[]? manifest = null;
        string? manifestContentType = null;
        var uploaded = new List<string>();
        var fake = new FakeRegistry((request, _) =>
        {
            var path = request.RequestUri!.AbsolutePath;
            if (path == "/v2/") return FakeRegistry.Status(HttpStatusCode.OK);
            if (request.Method == HttpMethod.Head)
                return path.EndsWith(baseDescriptor.Digest.ToString(), StringComparison.Ordinal) ? FakeRegistry.Bytes(baseBlob) : FakeRegistry.Status(HttpStatusCode.NotFound);
            if (request.Method == HttpMethod.Post && path == "/v2/app/blobs/uploads/")
            {
                var started = FakeRegistry.Status(HttpStatusCode.Accepted);
                started.Headers.Location = new Uri($"/v2/app/blobs/uploads/{Guid.NewGuid():N}", UriKind.Relative);
                return started;
            }
            if (request.Method == HttpMethod.Put && path.StartsWith("/v2/app/blobs/uploads/", StringComparison.Ordinal))
            {
                request.Content!.ReadAsByteArrayAsync().GetAwaiter().GetResult();
                lock (uploaded) uploaded.Add(System.Web.HttpUtility.ParseQueryString(request.RequestUri.Query)["digest"]!);
                return FakeRegistry.Status(HttpStatusCode.Created);
            }
            if (request.Method == HttpMethod.Put && path == "/v2/app/manifests/1")
            {
                manifest = request.Content!.ReadAsByteArrayAsync().GetAwaiter().GetResult();
                manifestContentType = request.Content.Headers.ContentType?.MediaType;
                return FakeRegistry.Status(HttpStatusCode.Created);
            }
            return null;
        });
        using var client = new RegistryClient(FakeRegistry.Settings(fake, Path.Combine(dir.Path, "cache")));
        var result = await new ImagePusher(client).PushAsync(new ComposedImage(config, [baseLayer, newLayer]), ImageReference.Parse("r.example/app:1"), CancellationToken.None);

        manifest.ShouldNotBeNull();
        result.Digest.ShouldBe(Digest.Compute(manifest));
        manifestContentType.ShouldBe(manifestType);
        var json = JsonNode.Parse(manifest)!;
        json["mediaType"]!.GetValue<string>().ShouldBe(manifestType);
        json["config"]!["mediaType"]!.GetValue<string>().ShouldBe(configType);
        json["config"]!["digest"]!.GetValue<string>().ShouldBe(config.Digest.ToString());
        var layers = json["layers"]!.AsArray();
        layers.Count.ShouldBe(2);
        layers[0]!["digest"]!.GetValue<string>().ShouldBe(baseDescriptor.Digest.ToString());
        layers[0]!["mediaType"]!.GetValue<string>().ShouldBe(baseType);
        layers[1]!["mediaType"]!.GetValue<string>().ShouldBe(newLayerType);
        result.Existing.ShouldBe(1, "the base blob is in the registry already");
        result.Uploaded.ShouldBe(2, "the config and the new layer");
        uploaded.ShouldContain(layers[1]!["digest"]!.GetValue<string>());
        uploaded.ShouldNotContain(baseDescriptor.Digest.ToString());
    }
}
