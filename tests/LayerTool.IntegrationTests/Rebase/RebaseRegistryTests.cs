using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using LayerTool.Cli;
using LayerTool.Image;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Diff;
using LayerTool.IntegrationTests.Registry;

namespace LayerTool.IntegrationTests.Rebase;

/// <summary>
/// <c>layertool rebase --registry</c> against a real registry (distribution 2.8) behind a counting <see cref="TestProxy"/>:
/// the bases v1 and v2 and an app on v1 (built by the engine, pushed with <c>layertool push</c>) rebased in the registry.
/// The app's own layers keep their digests, the pulled result has the engine rebase's filesystem, no layer blob is
/// uploaded (the new base's layer is mounted, only the config and the manifest are sent), and the app's own layer
/// blobs are each read once, for their file lists, then never again; a conflict is reported as the engine path
/// reports it.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class RebaseRegistryTests(EngineFixture engine) : IAsyncLifetime
{
    private const string CleanApp = """
        FROM {BASE}
        RUN echo app > /app.txt
        COPY config /opt/app/config
        RUN mkdir -p /srv && echo data > /srv/data && dd if=/dev/zero of=/srv/blob bs=1024 count=512
        """;

    private const string ConflictApp = """
        FROM {BASE}
        RUN echo mine > /lib/libssl.so.3
        RUN rm -rf /usr/share/doc
        RUN rm -rf /etc/ssl/certs && mkdir /etc/ssl/certs && echo mine > /etc/ssl/certs/mine.pem
        """;

    private readonly RebaseHarness _h = new(engine);
    private RegistryServer _registry = null!;
    private TestProxy _proxy = null!;

    public async Task InitializeAsync()
    {
        await _h.CreateBasesAsync();
        _registry = await RegistryServer.StartAsync();
        _proxy = new TestProxy(new Uri($"http://{_registry.Host}/"), new ProxyBehaviour());
    }

    public async Task DisposeAsync()
    {
        await _proxy.DisposeAsync();
        await _registry.DisposeAsync();
        await _h.DisposeAsync();
    }

    /// <summary>Runs the CLI with its own HOME and caches under <paramref name="root"/> (no blob or index cache shared with anything else).</summary>
    private async Task<(int Code, string Out, string Err)> CliAsync(string root, params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var environment = new Dictionary<string, string?>
        {
            ["HOME"] = Path.Combine(root, "home"),
            ["XDG_CACHE_HOME"] = Path.Combine(root, "cache"),
            ["DOCKER_CONFIG"] = Path.Combine(root, "docker"),
            ["DOCKER_HOST"] = engine.DockerHost,
        };
        var code = await LayerToolApp.RunAsync(args, new CliContext(output, error, () => TextReader.Null, root), CancellationToken.None,
            name => environment.GetValueOrDefault(name));
        return (code, output.ToString(), error.ToString());
    }

    private async Task<string> OkAsync(string root, params string[] args)
    {
        var (code, stdout, stderr) = await CliAsync(root, args);
        code.ShouldBe(0, $"layertool {string.Join(' ', args)}\n{stderr}");
        return stdout;
    }

    /// <summary>The manifest under <paramref name="repositoryAndTag"/> (repository:tag in the registry), read around the proxy.</summary>
    private async Task<ImageManifest> ManifestAsync(string repositoryAndTag)
    {
        var (repository, tag) = (repositoryAndTag[..repositoryAndTag.LastIndexOf(':')], repositoryAndTag[(repositoryAndTag.LastIndexOf(':') + 1)..]);
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri($"http://{_registry.Host}/v2/{repository}/manifests/{tag}"));
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(MediaTypes.DockerManifest));
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(MediaTypes.OciManifest));
        using var response = await http.SendAsync(request);
        response.EnsureSuccessStatusCode();
        return ImageManifest.Parse(await response.Content.ReadAsByteArrayAsync());
    }

    /// <summary>Pushes v1, v2 and the app (built on v1) with <c>layertool push</c>; returns the app's repository:tag.</summary>
    private async Task<string> PushAsync(string name, string dockerfile, IReadOnlyDictionary<string, string>? files = null)
    {
        var app = await _h.BuildAsync(name, _h.V1, dockerfile, files);
        var pusher = _h.TempDir();
        await OkAsync(pusher, "push", _h.V1, $"{_registry.Host}/rebase/base:v1");
        await OkAsync(pusher, "push", _h.V2, $"{_registry.Host}/rebase/base:v2");
        await OkAsync(pusher, "push", app, $"{_registry.Host}/rebase/{name}:1");
        return app;
    }

    private IReadOnlyList<ProxiedRequest> Since(int count) => [.. _proxy.Requests.Skip(count)];

    [Fact]
    public async Task A_rebase_in_the_registry_moves_manifests_only_and_gives_the_engine_rebases_filesystem()
    {
        var app = await PushAsync("clean", CleanApp, new Dictionary<string, string> { ["config"] = "key=value\n" });
        var appManifest = await ManifestAsync("rebase/clean:1");
        var v1Manifest = await ManifestAsync("rebase/base:v1");
        var v2Manifest = await ManifestAsync("rebase/base:v2");
        var own = appManifest.Layers.Skip(v1Manifest.Layers.Count).Select(l => l.Digest.ToString()).ToList();
        own.Count.ShouldBe(3);

        // Cold: fresh blob, index and file-list caches.
        var rebaser = _h.TempDir();
        var before = _proxy.Requests.Count;
        var json = JsonNode.Parse(await OkAsync(rebaser, "rebase", "--registry", $"{_proxy.Host}/rebase/clean:1", "--onto", $"{_proxy.Host}/rebase/base:v2",
            "--from", $"{_proxy.Host}/rebase/base:v1", "-t", $"{_proxy.Host}/rebase/clean:1-rebased", "--json"))!;
        var cold = Since(before);
        json["files"]!.AsArray().ShouldBeEmpty();
        json["mounted"]!.GetValue<int>().ShouldBe(v2Manifest.Layers.Count);
        json["layersStreamed"]!.GetValue<int>().ShouldBe(3);

        // No layer is uploaded: the only upload session is the config's; the new base's layer is mounted.
        var configDigest = (await ManifestAsync("rebase/clean:1-rebased")).Config.Digest.ToString();
        cold.Where(r => r.Method == "PATCH").ShouldBeEmpty();
        cold.Where(r => r.Method == "PUT" && r.PathAndQuery.Contains("/blobs/uploads/", StringComparison.Ordinal))
            .ShouldAllBe(r => r.PathAndQuery.Contains(Uri.EscapeDataString(configDigest), StringComparison.Ordinal) || r.PathAndQuery.Contains(configDigest, StringComparison.Ordinal));
        cold.Count(r => r.Method == "PUT" && r.PathAndQuery.Contains("/blobs/uploads/", StringComparison.Ordinal)).ShouldBe(1);
        cold.Where(r => r.Method == "POST" && r.PathAndQuery.Contains("mount=", StringComparison.Ordinal)).Select(r => r.Status).ShouldAllBe(s => s == 201);
        cold.Count(r => r.Method == "PUT" && r.PathAndQuery.Contains("/manifests/", StringComparison.Ordinal)).ShouldBe(1);
        // The app's own layers: each streamed once for its file list (nothing kept but the list), none stored in the blob cache.
        foreach (var digest in own)
        {
            cold.Count(r => r.Method == "GET" && r.PathAndQuery.EndsWith("/blobs/" + digest, StringComparison.Ordinal)).ShouldBe(1, digest);
            File.Exists(Path.Combine(rebaser, "cache", "layertool", "registry", "blobs", "sha256", digest["sha256:".Length..])).ShouldBeFalse(digest);
        }

        // Warm (same caches, another tag): no layer blob is fetched at all, the app's own included.
        before = _proxy.Requests.Count;
        var stdout = await OkAsync(rebaser, "rebase", "--registry", $"{_proxy.Host}/rebase/clean:1", "--onto", $"{_proxy.Host}/rebase/base:v2",
            "--from", $"{_proxy.Host}/rebase/base:v1", "-t", $"{_proxy.Host}/rebase/clean:1-again");
        var warm = Since(before);
        warm.Where(r => r.Method == "GET" && r.PathAndQuery.Contains("/blobs/", StringComparison.Ordinal)).ShouldBeEmpty();
        warm.Where(r => r.Method is "PATCH" || (r.Method == "PUT" && r.PathAndQuery.Contains("/blobs/", StringComparison.Ordinal))).ShouldBeEmpty();
        stdout.Trim().ShouldStartWith("sha256:");

        // The result: the new base's layers, then the app's own layers with their digests unchanged.
        var rebased = await ManifestAsync("rebase/clean:1-rebased");
        rebased.Layers.Select(l => l.Digest.ToString()).ShouldBe([.. v2Manifest.Layers.Select(l => l.Digest.ToString()), .. own]);
        json["manifestDigest"]!.GetValue<string>().ShouldBe(stdout.Trim());

        // Pulled into the engine, its filesystem is the engine rebase's, entry by entry, and its layers the same diff IDs.
        var engineTag = _h.Track(_h.Name("clean-engine-rebased"));
        var (code, _, stderr) = await _h.CliAsync("rebase", app, "--onto", _h.V2, "--from", _h.V1, "-t", engineTag, "--cache-dir", _h.CacheDir);
        code.ShouldBe(0, stderr);
        var archive = Path.Combine(_h.TempDir(), "pulled.tar");
        await OkAsync(rebaser, "pull", $"{_registry.Host}/rebase/clean:1-rebased", "-o", archive);
        var pulledTag = _h.Track($"{_registry.Host}/rebase/clean:1-rebased");
        await _h.DockerAsync("load", "-i", archive);
        (await _h.DiffIdsAsync(pulledTag)).ShouldBe(await _h.DiffIdsAsync(engineTag));
        using var expected = await _h.ExportIndexAsync(engineTag);
        using var actual = await _h.ExportIndexAsync(pulledTag);
        LayerVerifier.Compare(expected, actual).ShouldBeEmpty();
    }

    [Fact]
    public async Task A_conflict_is_reported_as_the_engine_path_reports_it_and_strict_pushes_nothing()
    {
        var app = await PushAsync("conflict", ConflictApp);
        var engineJson = JsonNode.Parse((await _h.CliAsync("rebase", app, "--onto", _h.V2, "--from", _h.V1, "--strict", "--json", "--no-load", "-o",
            Path.Combine(_h.TempDir(), "unused.tar"), "--cache-dir", _h.CacheDir)).Out)!;

        var rebaser = _h.TempDir();
        var before = _proxy.Requests.Count;
        var (code, stdout, stderr) = await CliAsync(rebaser, "rebase", "--registry", $"{_proxy.Host}/rebase/conflict:1", "--onto", $"{_proxy.Host}/rebase/base:v2",
            "--from", $"{_proxy.Host}/rebase/base:v1", "-t", $"{_proxy.Host}/rebase/conflict:1-rebased", "--strict", "--json");
        code.ShouldBe(2, stderr);
        stderr.ShouldContain("--strict: conflicts found");
        var json = JsonNode.Parse(stdout)!;
        json["files"]!.ToJsonString().ShouldBe(engineJson["files"]!.ToJsonString());
        json["config"]!.ToJsonString().ShouldBe(engineJson["config"]!.ToJsonString());
        json["conflicts"]!.GetValue<int>().ShouldBe(4);
        Since(before).Where(r => r.Method is "PUT" or "POST" or "PATCH").ShouldBeEmpty();

        // Without --strict: pushed, and the report on stderr names the hidden patches.
        (code, _, stderr) = await CliAsync(rebaser, "rebase", "--registry", $"{_proxy.Host}/rebase/conflict:1", "--onto", $"{_proxy.Host}/rebase/base:v2",
            "--from", $"{_proxy.Host}/rebase/base:v1", "-t", $"{_proxy.Host}/rebase/conflict:1-rebased");
        code.ShouldBe(0, stderr);
        stderr.ShouldContain("overwritten /lib/libssl.so.3");
        stderr.ShouldContain("opaque      /etc/ssl/certs/ca.pem");

        // A wrong --from is refused before anything is pushed.
        before = _proxy.Requests.Count;
        (code, _, stderr) = await CliAsync(rebaser, "rebase", "--registry", $"{_proxy.Host}/rebase/conflict:1", "--onto", $"{_proxy.Host}/rebase/base:v2",
            "--from", $"{_proxy.Host}/rebase/base:v2", "-t", $"{_proxy.Host}/rebase/conflict:1-wrong");
        code.ShouldBe(1);
        stderr.ShouldContain("is not a base of");
        Since(before).Where(r => r.Method is "PUT" or "POST" or "PATCH").ShouldBeEmpty();
    }

    [Fact]
    public async Task Without_from_the_old_base_is_found_from_the_base_labels_of_an_earlier_registry_rebase()
    {
        await PushAsync("found", CleanApp, new Dictionary<string, string> { ["config"] = "key=value\n" });
        var rebaser = _h.TempDir();
        await OkAsync(rebaser, "rebase", "--registry", $"{_proxy.Host}/rebase/found:1", "--onto", $"{_proxy.Host}/rebase/base:v2",
            "--from", $"{_proxy.Host}/rebase/base:v1", "-t", $"{_proxy.Host}/rebase/found:2");

        // found:2 names v2 (by registry reference and manifest digest) in its labels: back onto v1 without --from.
        var (code, _, stderr) = await CliAsync(rebaser, "rebase", "--registry", $"{_proxy.Host}/rebase/found:2", "--onto", $"{_proxy.Host}/rebase/base:v1",
            "-t", $"{_proxy.Host}/rebase/found:3");
        code.ShouldBe(0, stderr);
        // An OCI manifest carries the base as annotations, a Docker one as labels (the pusher keeps the layers' family).
        stderr.ShouldMatch($@"from {System.Text.RegularExpressions.Regex.Escape(_proxy.Host)}/rebase/base:v2 \((label|annotation)\)");
        (await ManifestAsync("rebase/found:3")).Layers.Select(l => l.Digest).ShouldBe((await ManifestAsync("rebase/found:1")).Layers.Select(l => l.Digest));

        // An image that names no base: a clear error asking for --from.
        (code, _, stderr) = await CliAsync(rebaser, "rebase", "--registry", $"{_proxy.Host}/rebase/found:1", "--onto", $"{_proxy.Host}/rebase/base:v2",
            "-t", $"{_proxy.Host}/rebase/found:4");
        code.ShouldBe(1);
        stderr.ShouldContain("name it with --from");
    }
}
