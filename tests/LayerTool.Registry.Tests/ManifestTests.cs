using System.Net;
using System.Text;
using LayerTool.Image;

namespace LayerTool.Registry.Tests;

public sealed class ManifestTests
{
    private const string Config = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    private static string Manifest(string layerDigest = Config) =>
        $$"""{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{{Config}}","size":2},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{{layerDigest}}","size":2}]}""";

    private static FakeRegistry Serving(Func<string, HttpResponseMessage?> byPath) =>
        new((request, _) => request.RequestUri!.AbsolutePath == "/v2/" ? FakeRegistry.Status(HttpStatusCode.OK) : byPath(request.RequestUri.AbsolutePath));

    [Fact]
    public async Task Schema_1_is_refused_by_name()
    {
        using var dir = new TempDir();
        var fake = Serving(_ => FakeRegistry.Json("""{"schemaVersion":1,"name":"x","tag":"1","fsLayers":[]}""", "application/vnd.docker.distribution.manifest.v1+prettyjws"));
        using var client = new RegistryClient(FakeRegistry.Settings(fake, dir.Path));
        var e = await Should.ThrowAsync<RegistryException>(() => client.ResolveAsync(ImageReference.Parse("localhost/x:1"), CancellationToken.None));
        e.Message.ShouldContain("schema 1");
    }

    [Fact]
    public async Task A_manifest_whose_bytes_do_not_match_the_digest_asked_for_is_refused()
    {
        using var dir = new TempDir();
        var fake = Serving(_ => FakeRegistry.Json(Manifest(), MediaTypes.DockerManifest));
        using var client = new RegistryClient(FakeRegistry.Settings(fake, dir.Path));
        var wrong = ImageReference.Parse("localhost/x@sha256:" + new string('0', 64));
        var e = await Should.ThrowAsync<RegistryException>(() => client.GetManifestAsync(wrong, CancellationToken.None));
        e.Message.ShouldContain("digest mismatch");
    }

    [Fact]
    public async Task A_digest_wins_over_a_tag()
    {
        using var dir = new TempDir();
        var bytes = Encoding.UTF8.GetBytes(Manifest());
        var digest = Digest.Compute(bytes);
        var fake = Serving(path => path.EndsWith("/manifests/" + digest, StringComparison.Ordinal) ? FakeRegistry.Json(Manifest(), MediaTypes.DockerManifest) : null);
        using var client = new RegistryClient(FakeRegistry.Settings(fake, dir.Path));
        var fetched = await client.GetManifestAsync(ImageReference.Parse($"localhost/x:1@{digest}"), CancellationToken.None);
        fetched.Digest.ShouldBe(digest);
    }

    [Fact]
    public async Task An_index_is_narrowed_to_the_platform_attestations_skipped()
    {
        using var dir = new TempDir();
        var amd = Encoding.UTF8.GetBytes(Manifest());
        var arm = Encoding.UTF8.GetBytes(Manifest("sha256:" + new string('1', 64)));
        var index = $$$"""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
             {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"{{{Digest.Compute(amd)}}}","size":{{{amd.Length}}},"platform":{"architecture":"amd64","os":"linux"}},
             {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"{{{Digest.Compute(arm)}}}","size":{{{arm.Length}}},"platform":{"architecture":"arm64","os":"linux","variant":"v8"}},
             {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{{{new string('2', 64)}}}","size":5,"platform":{"architecture":"unknown","os":"unknown"},"annotations":{"vnd.docker.reference.type":"attestation-manifest"}}]}
            """;
        var fake = Serving(path =>
            path.EndsWith("/manifests/1", StringComparison.Ordinal) ? FakeRegistry.Json(index, MediaTypes.OciIndex)
            : path.EndsWith("/manifests/" + Digest.Compute(arm), StringComparison.Ordinal) ? FakeRegistry.Bytes(arm)
            : path.EndsWith("/manifests/" + Digest.Compute(amd), StringComparison.Ordinal) ? FakeRegistry.Bytes(amd) : null);
        using var client = new RegistryClient(FakeRegistry.Settings(fake, dir.Path) with { Platform = RegistryPlatform.Parse("linux/arm64") });
        var resolved = await client.ResolveAsync(ImageReference.Parse("localhost/x:1"), CancellationToken.None);
        resolved.Fetched.Digest.ShouldBe(Digest.Compute(arm));
        resolved.Index.ShouldNotBeNull();
        using var other = new RegistryClient(FakeRegistry.Settings(fake, dir.Path) with { Platform = RegistryPlatform.Parse("linux/s390x") });
        var e = await Should.ThrowAsync<RegistryException>(() => other.ResolveAsync(ImageReference.Parse("localhost/x:1"), CancellationToken.None));
        e.Message.ShouldContain("linux/amd64, linux/arm64/v8");
    }

    [Fact]
    public async Task An_unknown_tag_says_so()
    {
        using var dir = new TempDir();
        var fake = Serving(_ => FakeRegistry.Json("""{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}""", status: HttpStatusCode.NotFound));
        using var client = new RegistryClient(FakeRegistry.Settings(fake, dir.Path));
        var e = await Should.ThrowAsync<RegistryException>(() => client.ResolveAsync(ImageReference.Parse("localhost/x:nope"), CancellationToken.None));
        e.Message.ShouldContain("manifest unknown");
        e.Message.ShouldContain("localhost/x:nope");
    }

    [Fact]
    public void Mirror_values_parse_as_dockerd_and_registries_conf_name_them()
    {
        RegistryMirror.Parse("https://mirror.example").ShouldBe(new RegistryMirror("docker.io", new Uri("https://mirror.example")));
        RegistryMirror.Parse("localhost:5000=http://127.0.0.1:6000/prefix/").ShouldBe(new RegistryMirror("localhost:5000", new Uri("http://127.0.0.1:6000/prefix/")));
        Should.Throw<RegistryException>(() => RegistryMirror.Parse("mirror.example"));
    }
}
