using System.Text;
using System.Text.Json.Nodes;
using LayerTool.Image;

namespace LayerTool.IntegrationTests.Registry;

/// <summary>
/// pull, push and extract against a real registry (Debian's docker-registry 2.8 on 127.0.0.1), plain, behind
/// htpasswd Basic auth, and behind test proxies (a Bearer token service, cut connections, ignored ranges,
/// corrupt bytes, mirrors, blob redirects to another port). No engine needed.
/// </summary>
public sealed class RegistryTests : IAsyncLifetime
{
    private RegistryServer _registry = null!;
    private readonly RegistryHarness _h = new();

    public async Task InitializeAsync() => _registry = await RegistryServer.StartAsync();

    public async Task DisposeAsync()
    {
        await _registry.DisposeAsync();
        _h.Dispose();
    }

    private string Ref(string repo, string tag = "1") => $"{_registry.Host}/{repo}:{tag}";

    [Fact]
    public async Task Push_then_pull_round_trips_byte_exact_in_both_formats()
    {
        var image = await _h.MakeImageAsync("rt", layers: 3);
        var pushed = (await _h.OkAsync("push", image.Archive, Ref("rt/app"))).Out.Trim();
        Digest.TryParse(pushed, out _).ShouldBeTrue(pushed);

        var docker = Path.Combine(_h.Root, "pulled.tar");
        (await _h.OkAsync("pull", Ref("rt/app"), "-o", docker)).Out.Trim().ShouldBe(pushed);
        RegistryHarness.ConfigOf(docker).ShouldBe(image.Config);
        var tars = await RegistryHarness.LayerTarsAsync(docker);
        tars.Count.ShouldBe(3);
        for (var i = 0; i < 3; i++) tars[i].ShouldBe(await File.ReadAllBytesAsync(image.LayerFiles[i]));

        var oci = Path.Combine(_h.Root, "pulled-oci");
        (await _h.OkAsync("pull", Ref("rt/app"), "-o", oci + "/", "--format", "oci")).Out.Trim().ShouldBe(pushed);
        var index = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(oci, "index.json")))!;
        index["manifests"]![0]!["digest"]!.GetValue<string>().ShouldBe(pushed);
        RegistryHarness.ConfigOf(oci).ShouldBe(image.Config);
        (await RegistryHarness.LayerTarsAsync(oci)).Select(Convert.ToHexString).ShouldBe(tars.Select(Convert.ToHexString));

        // The layout pushed elsewhere is the same manifest, byte for byte; its blobs are mounted, not uploaded.
        var again = await _h.OkAsync("push", oci, Ref("rt/copy"));
        again.Out.Trim().ShouldBe(pushed);
        again.Err.ShouldContain("0 blobs uploaded");
        again.Err.ShouldContain("4 mounted");
        var third = await _h.OkAsync("push", oci, Ref("rt/copy", "2"));
        third.Err.ShouldContain("4 already there");
    }

    [Fact]
    public async Task Extract_writes_exactly_the_last_layers_files_fetching_only_that_layer()
    {
        var image = await _h.MakeImageAsync("ex", layers: 3);
        await _h.OkAsync("push", image.Archive, Ref("ex/app"));
        await using var proxy = new TestProxy(new Uri($"http://{_registry.Host}/"), new ProxyBehaviour());
        var dir = Path.Combine(_h.Root, "extracted");
        var result = await _h.OkAsync("extract", $"{proxy.Host}/ex/app:1", dir, "--cache-dir", Path.Combine(_h.Root, "fresh-cache"));
        var files = Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(dir, f)).Order().ToList();
        files.ShouldBe(image.Files[2].Keys.Order().ToList());
        foreach (var (name, bytes) in image.Files[2]) (await File.ReadAllBytesAsync(Path.Combine(dir, name))).ShouldBe(bytes);
        result.Out.ShouldContain("whiteout /layer0/f0 (not applied)");
        // The config and one layer: nothing else was downloaded.
        proxy.Requests.Count(r => r.Method == "GET" && r.PathAndQuery.Contains("/blobs/", StringComparison.Ordinal)).ShouldBe(2);

        // --all: the flattened filesystem, the whiteout applied between layers.
        var all = Path.Combine(_h.Root, "all");
        await _h.OkAsync("extract", Ref("ex/app"), all, "--all");
        File.Exists(Path.Combine(all, "layer0/f0")).ShouldBeFalse();
        (await File.ReadAllBytesAsync(Path.Combine(all, "layer0/f1"))).ShouldBe(image.Files[0]["layer0/f1"]);
        (await File.ReadAllBytesAsync(Path.Combine(all, "layer1/f2"))).ShouldBe(image.Files[1]["layer1/f2"]);

        // --layer 1 into the same directory, then the last layer's whiteout applied.
        var applied = Path.Combine(_h.Root, "applied");
        await _h.OkAsync("extract", Ref("ex/app"), applied, "--layer", "1");
        File.Exists(Path.Combine(applied, "layer0/f0")).ShouldBeTrue();
        await _h.OkAsync("extract", Ref("ex/app"), applied, "--layer", "-1", "--apply-whiteouts");
        File.Exists(Path.Combine(applied, "layer0/f0")).ShouldBeFalse();
        File.Exists(Path.Combine(applied, "layer0/f1")).ShouldBeTrue();
    }

    [Fact]
    public async Task A_pull_resumes_blobs_cut_half_way_with_closed_ranges()
    {
        var image = await _h.MakeImageAsync("cut", layers: 3, fileSize: 400_000);
        await _h.OkAsync("push", image.Archive, Ref("cut/app"));
        await using var proxy = new TestProxy(new Uri($"http://{_registry.Host}/"), new ProxyBehaviour { CutFirstBlobDownload = true });
        var output = Path.Combine(_h.Root, "cut.tar");
        var result = await _h.OkAsync("pull", $"{proxy.Host}/cut/app:1", "-o", output, "--cache-dir", Path.Combine(_h.Root, "c2"));
        (await RegistryHarness.LayerTarsAsync(output)).Select(Convert.ToHexString).ShouldBe(image.LayerFiles.Select(f => Convert.ToHexString(File.ReadAllBytes(f))));
        var ranged = proxy.Requests.Where(r => r.Range is not null).ToList();
        ranged.Count.ShouldBe(4); // three layers and the config, each resumed once
        ranged.ShouldAllBe(r => r.Status == 206);
        ranged.ShouldAllBe(r => System.Text.RegularExpressions.Regex.IsMatch(r.Range!, "^bytes=[0-9]+-[0-9]+$"));
        result.Err.ShouldContain("resuming at byte");
    }

    [Fact]
    public async Task A_registry_that_answers_200_to_ranges_restarts_the_blob_cleanly()
    {
        var image = await _h.MakeImageAsync("norange", layers: 2, fileSize: 300_000);
        await _h.OkAsync("push", image.Archive, Ref("nr/app"));
        await using var proxy = new TestProxy(new Uri($"http://{_registry.Host}/"), new ProxyBehaviour { CutFirstBlobDownload = true, IgnoreRange = true });
        var output = Path.Combine(_h.Root, "nr.tar");
        var result = await _h.OkAsync("pull", $"{proxy.Host}/nr/app:1", "-o", output, "--cache-dir", Path.Combine(_h.Root, "c3"));
        (await RegistryHarness.LayerTarsAsync(output)).Select(Convert.ToHexString).ShouldBe(image.LayerFiles.Select(f => Convert.ToHexString(File.ReadAllBytes(f))));
        proxy.Requests.Where(r => r.Range is not null).ShouldAllBe(r => r.Status == 200);
        result.Err.ShouldContain("range ignored (200): restarting");
    }

    [Fact]
    public async Task A_corrupt_blob_is_refused_and_nothing_is_renamed_into_place()
    {
        var image = await _h.MakeImageAsync("bad", layers: 1, fileSize: 100_000, filesPerLayer: 1);
        await _h.OkAsync("push", image.Archive, Ref("bad/app"));
        await using var proxy = new TestProxy(new Uri($"http://{_registry.Host}/"), new ProxyBehaviour { CorruptBlobs = true });
        var cache = Path.Combine(_h.Root, "c4");
        var output = Path.Combine(_h.Root, "bad.tar");
        var result = await _h.CliAsync("pull", $"{proxy.Host}/bad/app:1", "-o", output, "--cache-dir", cache);
        result.Code.ShouldBe(1);
        result.Err.ShouldContain("layertool: ");
        result.Err.ShouldContain("digest mismatch");
        File.Exists(output).ShouldBeFalse();
        var kept = Directory.Exists(Path.Combine(cache, "blobs")) ? Directory.EnumerateFiles(Path.Combine(cache, "blobs"), "*", SearchOption.AllDirectories).ToList() : [];
        kept.ShouldBeEmpty();
    }

    [Fact]
    public async Task Unknown_tag_and_a_registry_that_is_down_fail_clearly()
    {
        var unknown = await _h.CliAsync("pull", Ref("nothing/here", "nope"), "-o", Path.Combine(_h.Root, "x.tar"));
        unknown.Code.ShouldBe(1);
        unknown.Err.ShouldStartWith("layertool: ");
        unknown.Err.ShouldContain("manifest unknown");

        var down = await _h.CliAsync("pull", $"127.0.0.1:{RegistryServer.FreePort()}/a/b:1", "-o", Path.Combine(_h.Root, "y.tar"));
        down.Code.ShouldBe(1);
        down.Err.ShouldContain("layertool: cannot reach");
    }

    [Fact]
    public async Task Mirrors_are_tried_in_order_and_fall_through_when_down_or_missing_the_image()
    {
        var image = await _h.MakeImageAsync("mir", layers: 2);
        await _h.OkAsync("push", image.Archive, Ref("mir/app"));
        var upstream = new Uri($"http://{_registry.Host}/");
        await using var serving = new TestProxy(upstream, new ProxyBehaviour());
        await using var missing = new TestProxy(upstream, new ProxyBehaviour { NotFound = true });
        var downPort = RegistryServer.FreePort();

        // A mirror that serves: everything comes from it.
        await _h.OkAsync("pull", Ref("mir/app"), "-o", Path.Combine(_h.Root, "m1.tar"), "--cache-dir", Path.Combine(_h.Root, "m1"),
            "--registry-mirror", $"{_registry.Host}=http://{serving.Host}");
        serving.Requests.Count(r => r.PathAndQuery.Contains("/blobs/", StringComparison.Ordinal) && r.Status == 200).ShouldBe(3);

        // One that is down, one without the image: both fall through to the origin.
        var before = serving.Requests.Count;
        var result = await _h.OkAsync("pull", Ref("mir/app"), "-o", Path.Combine(_h.Root, "m2.tar"), "--cache-dir", Path.Combine(_h.Root, "m2"),
            "--registry-mirror", $"{_registry.Host}=http://127.0.0.1:{downPort}", "--registry-mirror", $"{_registry.Host}=http://{missing.Host}");
        missing.Requests.ShouldContain(r => r.Status == 404);
        result.Err.ShouldContain($"mirror http://127.0.0.1:{downPort}/ failed");
        result.Err.ShouldContain($"mirror http://{missing.Host}/ failed");
        (await RegistryHarness.LayerTarsAsync(Path.Combine(_h.Root, "m2.tar"))).Count.ShouldBe(2);
        serving.Requests.Count.ShouldBe(before);
    }

    [Fact]
    public async Task Bearer_token_service_gets_one_scope_per_scope_and_wrong_credentials_fail()
    {
        var image = await _h.MakeImageAsync("tok", layers: 1, filesPerLayer: 1);
        await _h.OkAsync("push", image.Archive, Ref("tok/app"));
        await using var gate = new TestProxy(new Uri($"http://{_registry.Host}/"), new ProxyBehaviour { Bearer = ("tess", "t0ken") });
        await _h.OkAsync("pull", $"{gate.Host}/tok/app:1", "-o", Path.Combine(_h.Root, "tok.tar"), "--creds", "tess:t0ken");
        gate.TokenScopes.ShouldContain(s => s.SequenceEqual(new[] { "repository:tok/app:pull" }));
        var pushed = await _h.OkAsync("push", image.Archive, $"{gate.Host}/tok/other:1", "--creds", "tess:t0ken");
        gate.TokenScopes.ShouldContain(s => s.Contains("repository:tok/other:pull,push"));

        var wrong = await _h.CliAsync("pull", $"{gate.Host}/tok/app:1", "-o", Path.Combine(_h.Root, "tok2.tar"), "--creds", "tess:nope", "--cache-dir", Path.Combine(_h.Root, "t2"));
        wrong.Code.ShouldBe(1);
        wrong.Err.ShouldContain("authentication failed for user 'tess'");
    }

    [Fact]
    public async Task Bearer_token_by_oauth2_post_with_the_docker_configs_identity_token()
    {
        var image = await _h.MakeImageAsync("oauth", layers: 1, filesPerLayer: 1);
        await _h.OkAsync("push", image.Archive, Ref("oauth/app"));
        await using var gate = new TestProxy(new Uri($"http://{_registry.Host}/"), new ProxyBehaviour { Bearer = ("tess", "t0ken"), RefreshToken = "refresh-42" });
        Directory.CreateDirectory(Path.Combine(_h.Root, "docker"));
        var config = Path.Combine(_h.Root, "docker", "config.json");
        await File.WriteAllTextAsync(config, "{\"auths\":{\"" + gate.Host + "\":{\"identitytoken\":\"refresh-42\"}}}");

        // A pull and a push through the gate: every token by POST (grant_type=refresh_token), scopes space-separated in one field.
        await _h.OkAsync("pull", $"{gate.Host}/oauth/app:1", "-o", Path.Combine(_h.Root, "oauth.tar"), "--cache-dir", Path.Combine(_h.Root, "o1"));
        await _h.OkAsync("push", image.Archive, $"{gate.Host}/oauth/other:1");
        var requests = gate.TokenRequests.ToList();
        requests.ShouldNotBeEmpty();
        requests.ShouldAllBe(r => r.Method == "POST" && r.Grant == "refresh_token" && r.Granted);
        requests.ShouldContain(r => r.Scopes.SequenceEqual(new[] { "repository:oauth/app:pull" }));
        requests.ShouldContain(r => r.Scopes.Contains("repository:oauth/other:pull,push"));
        gate.Requests.Where(r => r.PathAndQuery.Contains("/manifests/", StringComparison.Ordinal)).ShouldAllBe(r => r.Authorization!.StartsWith("Bearer t-"));

        // A revoked refresh token: the token service's 400 invalid_grant is an authentication failure, exit 1.
        await File.WriteAllTextAsync(config, "{\"auths\":{\"" + gate.Host + "\":{\"identitytoken\":\"revoked\"}}}");
        var refused = await _h.CliAsync("pull", $"{gate.Host}/oauth/app:1", "-o", Path.Combine(_h.Root, "oauth2.tar"), "--cache-dir", Path.Combine(_h.Root, "o2"));
        refused.Code.ShouldBe(1);
        refused.Err.ShouldStartWith("layertool: ");
        refused.Err.ShouldContain("authentication failed with the identity token");
        File.Exists(Path.Combine(_h.Root, "oauth2.tar")).ShouldBeFalse();
    }
}

/// <summary>A registry behind htpasswd Basic auth.</summary>
public sealed class RegistryBasicAuthTests : IAsyncLifetime
{
    private RegistryServer _registry = null!;
    private readonly RegistryHarness _h = new();

    public async Task InitializeAsync() => _registry = await RegistryServer.StartAsync("alice", "wonder");

    public async Task DisposeAsync()
    {
        await _registry.DisposeAsync();
        _h.Dispose();
    }

    [Fact]
    public async Task Credentials_from_docker_config_work_and_bad_ones_fail_clearly()
    {
        var image = await _h.MakeImageAsync("basic", layers: 1, filesPerLayer: 1);
        var anonymous = await _h.CliAsync("push", image.Archive, $"{_registry.Host}/b/app:1");
        anonymous.Code.ShouldBe(1);
        anonymous.Err.ShouldContain("authentication required");

        Directory.CreateDirectory(Path.Combine(_h.Root, "docker"));
        var auth = Convert.ToBase64String(Encoding.UTF8.GetBytes("alice:wonder"));
        await File.WriteAllTextAsync(Path.Combine(_h.Root, "docker", "config.json"), "{\"auths\":{\"" + _registry.Host + "\":{\"auth\":\"" + auth + "\"}}}");
        await _h.OkAsync("push", image.Archive, $"{_registry.Host}/b/app:1");
        await _h.OkAsync("pull", $"{_registry.Host}/b/app:1", "-o", Path.Combine(_h.Root, "b.tar"), "--cache-dir", Path.Combine(_h.Root, "b2"));

        var bad = await _h.CliAsync("pull", $"{_registry.Host}/b/app:1", "-o", Path.Combine(_h.Root, "c.tar"), "--creds", "alice:wrong", "--cache-dir", Path.Combine(_h.Root, "b3"));
        bad.Code.ShouldBe(1);
        bad.Err.ShouldStartWith("layertool: ");
        bad.Err.ShouldContain("authentication required");
    }

    [Fact]
    public async Task Credentials_never_reach_a_blob_redirect_to_another_port()
    {
        var image = await _h.MakeImageAsync("redir", layers: 2, filesPerLayer: 1);
        await _h.OkAsync("push", image.Archive, $"{_registry.Host}/r/app:1", "--creds", "alice:wonder");
        var basic = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("alice:wonder"));
        var upstream = new Uri($"http://{_registry.Host}/");
        await using var storage = new TestProxy(upstream, new ProxyBehaviour { UpstreamAuthorization = basic });
        await using var front = new TestProxy(upstream, new ProxyBehaviour { RedirectBlobsTo = storage.BaseUri });
        await _h.OkAsync("pull", $"{front.Host}/r/app:1", "-o", Path.Combine(_h.Root, "r.tar"), "--creds", "alice:wonder", "--cache-dir", Path.Combine(_h.Root, "r2"));
        front.Requests.Where(r => r.PathAndQuery.Contains("/blobs/", StringComparison.Ordinal)).ShouldAllBe(r => r.Authorization == basic && r.Status == 307);
        var served = storage.Requests.Where(r => r.PathAndQuery.Contains("/blobs/", StringComparison.Ordinal)).ToList();
        served.Count.ShouldBe(3);
        served.ShouldAllBe(r => r.Authorization == null && r.Status == 200);
    }
}
