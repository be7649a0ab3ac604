using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using LayerTool.Image.Formats;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Layers.Index;
using LayerTool.Image.Reports;
using LayerTool.IntegrationTests.Squash;

namespace LayerTool.IntegrationTests.Registry;

/// <summary>
/// <c>squash --input registry://</c>, <c>squash --push</c> and <c>build --push</c> against a real registry
/// (docker-registry 2.8 on 127.0.0.1) and the real engine, which builds the test images and makes the
/// reference squash the registry one is compared with.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class RegistrySquashTests(EngineFixture engine) : IAsyncLifetime
{
    private const string Base = "busybox:latest";
    private readonly SquashHarness _h = new(engine);
    private RegistryServer _registry = null!;
    private string _home = null!;

    public async Task InitializeAsync()
    {
        _registry = await RegistryServer.StartAsync();
        _home = _h.TempDir();
    }

    public async Task DisposeAsync()
    {
        await _registry.DisposeAsync();
        await _h.DisposeAsync();
    }

    private string Ref(string repo, string tag) => $"{_registry.Host}/{repo}:{tag}";

    /// <summary>The CLI with a HOME, blob cache and docker config of this test's own, and a fixed SOURCE_DATE_EPOCH.</summary>
    private async Task<(int Code, string Out, string Err)> CliAsync(params string[] args) =>
        await _h.CliAsync(new Dictionary<string, string>
        {
            ["HOME"] = _home,
            ["XDG_CACHE_HOME"] = Path.Combine(_home, "cache"),
            ["DOCKER_CONFIG"] = Path.Combine(_home, "docker"),
            ["SOURCE_DATE_EPOCH"] = "1650000000",
        }, args);

    private async Task<string> OkAsync(params string[] args)
    {
        var (code, stdout, stderr) = await CliAsync(args);
        code.ShouldBe(0, $"layertool {string.Join(' ', args)}\n{stderr}");
        return stdout;
    }

    /// <summary>The manifest the registry serves for a reference: its bytes' digest and the parsed document.</summary>
    private async Task<(string Digest, JsonNode Manifest)> ManifestAsync(string repo, string tagOrDigest)
    {
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri($"http://{_registry.Host}/v2/{repo}/manifests/{tagOrDigest}"));
        foreach (var type in new[] { "application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json" })
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(type));
        using var response = await http.SendAsync(request);
        response.EnsureSuccessStatusCode();
        var bytes = await response.Content.ReadAsByteArrayAsync();
        return ("sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes)), JsonNode.Parse(bytes)!);
    }

    private async Task<string> BuildImageAsync() => await _h.BuildAsync("regsquash", $"""
        FROM {Base}
        RUN mkdir -p /a/opq /a/gone && echo 1 > /a/opq/x && echo 2 > /a/gone/y && echo t > /a/t && ln /a/t /a/l && head -c 300000 /dev/urandom > /a/big
        RUN rm -rf /a/opq && mkdir /a/opq && echo 3 > /a/opq/z && rm -rf /a/gone && rm /a/t && rm /bin/cut && chmod 4755 /a/big
        RUN echo again > /a/opq/z2
        """);

    private static async Task<FsIndex> IndexOfArchiveAsync(string path)
    {
        using var archive = ImageArchive.Open(path);
        return await ImageReports.IndexAsync(archive.GetImage(), CancellationToken.None);
    }

    [Fact]
    public async Task Squash_from_a_registry_to_a_registry_pushes_the_image_the_engine_squash_makes()
    {
        var image = await BuildImageAsync();
        var appRef = Ref("sq/app", "1");
        var baseRef = Ref("sq/base", "1");
        await OkAsync("push", image, appRef);
        await OkAsync("push", Base, baseRef);

        var target = Ref("sq/app", "flat");
        var stdout = await OkAsync("squash", "--input", "registry://" + appRef, "--onto", baseRef, "--push", target, "--reproducible", "--json",
            "--cache-dir", _h.TempDir());
        var json = JsonDocument.Parse(stdout).RootElement;
        var pushed = json.GetProperty("pushed")[0];
        pushed.GetProperty("reference").GetString().ShouldBe(target);

        // Byte-checks: the digest printed is the digest of the bytes the registry serves for the tag, the manifest names
        // the image ID as its config, the base's blobs unchanged (found in the registry, not uploaded again) plus one layer.
        var (digest, manifest) = await ManifestAsync("sq/app", "flat");
        pushed.GetProperty("digest").GetString().ShouldBe(digest);
        manifest["config"]!["digest"]!.GetValue<string>().ShouldBe(json.GetProperty("imageId").GetString());
        var (_, baseManifest) = await ManifestAsync("sq/base", "1");
        var baseLayers = baseManifest["layers"]!.AsArray().Select(l => l!["digest"]!.GetValue<string>()).ToList();
        var layers = manifest["layers"]!.AsArray().Select(l => l!["digest"]!.GetValue<string>()).ToList();
        layers.Count.ShouldBe(baseLayers.Count + 1);
        layers.Take(baseLayers.Count).ShouldBe(baseLayers);

        // The engine's squash of the same image, reproducible with the same epoch: the same filesystem as the pushed result,
        // and both exactly the image's.
        var engineTag = _h.Track(_h.Name("regsquash-engine"));
        var (code, _, stderr) = await CliAsync("squash", image, "--onto", Base, "-t", engineTag, "--reproducible", "--cache-dir", _h.TempDir());
        code.ShouldBe(0, stderr);
        var pulled = Path.Combine(_h.TempDir(), "pulled.tar");
        (await OkAsync("pull", target, "-o", pulled)).Trim().ShouldBe(digest);
        var fromRegistry = await IndexOfArchiveAsync(pulled);
        LayerVerifier.Compare(await _h.IndexAsync(engineTag), fromRegistry).ShouldBeEmpty();
        // Byte for byte: the new layer is the same tar whichever way the image was read (engine export or registry blobs).
        (await _h.DiffIdsAsync(engineTag))[^1].ShouldBe(json.GetProperty("layerDiffId").GetString());
        LayerVerifier.Compare(await _h.IndexAsync(image), fromRegistry).ShouldBeEmpty();

        // Squashed again the same way: the same manifest digest (reproducible), and every blob already there.
        var (again, againOut, againErr) = await CliAsync("squash", "--input", "registry://" + appRef, "--onto", baseRef, "--push", Ref("sq/app", "flat2"),
            "--reproducible", "--cache-dir", _h.TempDir());
        again.ShouldBe(0, againErr);
        againOut.Trim().ShouldBe(digest);
        againErr.ShouldContain("0 blobs uploaded");
    }

    [Fact]
    public async Task Squash_mixes_sources_and_writes_a_file_and_failures_leave_nothing()
    {
        var image = await BuildImageAsync();
        var archive = Path.Combine(_h.TempDir(), "image.tar");
        await _h.SaveAsync(archive, image);
        var baseRef = Ref("mix/base", "1");
        await OkAsync("push", Base, baseRef);

        // The image from an archive, the base from the registry, the result to a file and to the registry.
        var output = Path.Combine(_h.TempDir(), "out.tar");
        var digest = (await OkAsync("squash", image, "--input", archive, "--base-input", "registry://" + baseRef, "-o", output,
            "--push", Ref("mix/app", "1"), "--cache-dir", _h.TempDir())).Trim();
        digest.ShouldBe((await ManifestAsync("mix/app", "1")).Digest);
        LayerVerifier.Compare(await _h.IndexAsync(image), await IndexOfArchiveAsync(output)).ShouldBeEmpty();
        using (var written = ImageArchive.Open(output))
            written.GetImage().Config.Digest.ToString().ShouldBe((await ManifestAsync("mix/app", "1")).Manifest["config"]!["digest"]!.GetValue<string>());

        // The image from the registry onto scratch, into an OCI layout only.
        await OkAsync("push", image, Ref("mix/app", "src"));
        var layout = Path.Combine(_h.TempDir(), "layout");
        await OkAsync("squash", "--input", "registry://" + Ref("mix/app", "src"), "--onto", "scratch", "-o", layout, "--format", "oci");
        using (var oci = ImageArchive.Open(layout))
            oci.GetImage().Layers.Count.ShouldBe(1);
        LayerVerifier.Compare(await _h.IndexAsync(image), await IndexOfArchiveAsync(layout)).ShouldBeEmpty();

        // An unknown tag: a clear error, exit 1, no output written, nothing pushed.
        var missing = Path.Combine(_h.TempDir(), "missing.tar");
        var (code, _, stderr) = await CliAsync("squash", "--input", "registry://" + Ref("mix/app", "nope"), "--onto", baseRef, "-o", missing,
            "--push", Ref("mix/app", "never"));
        code.ShouldBe(1);
        stderr.ShouldStartWith("layertool: ");
        stderr.ShouldContain("manifest unknown");
        File.Exists(missing).ShouldBeFalse();
        using var http = new HttpClient();
        (await http.GetAsync(new Uri($"http://{_registry.Host}/v2/mix/app/manifests/never"))).StatusCode.ShouldBe(System.Net.HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Engine_squash_push_and_build_push_push_the_image_the_engine_has()
    {
        // squash on the engine, then --push from the engine: the registry's manifest names the squashed image's ID.
        var image = await BuildImageAsync();
        var squashedTag = _h.Track(_h.Name("regsquash-pushed"));
        var (code, stdout, stderr) = await CliAsync("squash", image, "--onto", Base, "-t", squashedTag, "--push", Ref("eng/app", "1"), "--cache-dir", _h.TempDir());
        code.ShouldBe(0, stderr);
        var (digest, manifest) = await ManifestAsync("eng/app", "1");
        stdout.Trim().ShouldBe(digest);
        var squashedId = (await _h.Images.TryInspectImageAsync(squashedTag, CancellationToken.None)).ShouldNotBeNull().Id;
        manifest["config"]!["digest"]!.GetValue<string>().ShouldBe(squashedId);

        // build --push: after the build, the image is pushed from the engine; a build that fails pushes nothing.
        var context = _h.TempDir();
        await File.WriteAllTextAsync(Path.Combine(context, "Dockerfile"), $"FROM {Base}\nRUN echo built > /built\nLABEL {EngineFixture.TestLabel}=1\n");
        var builtTag = _h.Track(_h.Name("regbuild"));
        (code, stdout, stderr) = await CliAsync("build", context, "-q", "-t", builtTag, "--network", "none", "--push", Ref("built/app", "1"), "--push", Ref("built/copy", "1"));
        code.ShouldBe(0, stderr);
        var builtId = stdout.Trim();
        (digest, manifest) = await ManifestAsync("built/app", "1");
        manifest["config"]!["digest"]!.GetValue<string>().ShouldBe(builtId);
        stderr.ShouldContain($"digest {digest}");
        (await ManifestAsync("built/copy", "1")).Digest.ShouldBe(digest);
        stderr.ShouldContain("0 blobs uploaded", Case.Sensitive, "the second push finds or mounts every blob");

        await File.WriteAllTextAsync(Path.Combine(context, "Dockerfile"), $"FROM {Base}\nRUN exit 3\n");
        (code, _, _) = await CliAsync("build", context, "-q", "--network", "none", "--push", Ref("built/failed", "1"));
        code.ShouldBe(1);
        using var http = new HttpClient();
        (await http.GetAsync(new Uri($"http://{_registry.Host}/v2/built/failed/manifests/1"))).StatusCode.ShouldBe(System.Net.HttpStatusCode.NotFound);
    }
}
