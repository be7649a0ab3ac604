using System.Net;
using System.Text;
using LayerTool.Image;
using LayerTool.Registry.Auth;

namespace LayerTool.Registry.Tests;

public sealed class AuthTests
{
    [Fact]
    public void Parses_bearer_challenge_with_quoted_commas_and_a_second_challenge()
    {
        var challenges = AuthChallenge.Parse(["Bearer realm=\"https://auth.example/token\",service=\"registry.example\",scope=\"repository:a/b:pull,push\", Basic realm=\"x\""]);
        challenges.Count.ShouldBe(2);
        challenges[0].IsBearer.ShouldBeTrue();
        challenges[0]["realm"].ShouldBe("https://auth.example/token");
        challenges[0]["service"].ShouldBe("registry.example");
        challenges[0]["scope"].ShouldBe("repository:a/b:pull,push");
        challenges[1].IsBasic.ShouldBeTrue();
        challenges[1]["realm"].ShouldBe("x");
    }

    [Fact]
    public async Task Docker_config_auths_base64_and_hub_aliases()
    {
        using var dir = new TempDir();
        var config = Path.Combine(dir.Path, "config.json");
        var auth = Convert.ToBase64String(Encoding.UTF8.GetBytes("alice:s3:cret"));
        await File.WriteAllTextAsync(config, "{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"" + auth + "\"},\"localhost:5000\":{\"identitytoken\":\"refresh-me\"}}}");
        var source = new DockerConfigCredentials(config);
        var hub = await source.GetAsync("docker.io", CancellationToken.None);
        hub.ShouldNotBeNull();
        hub.Username.ShouldBe("alice");
        hub.Password.ShouldBe("s3:cret");
        (await source.GetAsync("localhost:5000", CancellationToken.None))!.IdentityToken.ShouldBe("refresh-me");
        (await source.GetAsync("other.example", CancellationToken.None)).ShouldBeNull();
    }

    [Fact]
    public async Task Credential_helper_gets_the_server_on_stdin_as_docker_runs_it()
    {
        using var dir = new TempDir();
        var config = Path.Combine(dir.Path, "config.json");
        await File.WriteAllTextAsync(config, """{"credsStore":"desktop","credHelpers":{"ghcr.io":"gh"}}""");
        var calls = new List<(string Program, string Input)>();
        var source = new DockerConfigCredentials(config, (program, input, _) =>
        {
            calls.Add((program, input));
            return Task.FromResult(program == "docker-credential-gh"
                ? (0, """{"ServerURL":"ghcr.io","Username":"<token>","Secret":"idt"}""", "")
                : (1, "credentials not found in native keychain", ""));
        });
        var gh = await source.GetAsync("ghcr.io", CancellationToken.None);
        gh!.IdentityToken.ShouldBe("idt");
        (await source.GetAsync("docker.io", CancellationToken.None)).ShouldBeNull();
        calls.ShouldBe([("docker-credential-gh", "ghcr.io"), ("docker-credential-desktop", "https://index.docker.io/v1/")]);
    }

    [Fact]
    public async Task Bearer_token_is_fetched_with_one_scope_parameter_per_scope_and_basic_credentials()
    {
        using var dir = new TempDir();
        var manifest = """{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}""";
        var fake = new FakeRegistry((request, _) => request.RequestUri!.AbsolutePath switch
        {
            "/v2/" => FakeRegistry.Challenge("Bearer realm=\"https://auth.example/token\",service=\"reg\""),
            "/token" => FakeRegistry.Json("""{"token":"tok-1"}"""),
            "/v2/team/app/manifests/1" when request.Headers.Authorization?.ToString() == "Bearer tok-1" => FakeRegistry.Json(manifest, "application/vnd.oci.image.manifest.v1+json"),
            "/v2/team/app/manifests/1" => FakeRegistry.Challenge("Bearer realm=\"https://auth.example/token\",service=\"reg\",scope=\"repository:team/app:pull\""),
            _ => null,
        });
        using var client = new RegistryClient(FakeRegistry.Settings(fake, dir.Path) with
        {
            Credentials = new FixedCredentials("registry.example", new RegistryCredential("bob", "pw"), NoCredentials.Instance),
        });
        var fetched = await client.GetManifestAsync(ImageReference.Parse("registry.example/team/app:1"), CancellationToken.None);
        fetched.MediaType.ShouldBe(MediaTypes.OciManifest);
        var token = fake.Seen.Single(s => s.Uri.AbsolutePath == "/token");
        token.Uri.Query.ShouldBe("?service=reg&scope=repository%3Ateam%2Fapp%3Apull&account=bob");
        token.Authorization.ShouldBe("Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("bob:pw")));
        fake.Seen.Where(s => s.Uri.AbsolutePath.Contains("/manifests/", StringComparison.Ordinal)).Select(s => s.Authorization).ShouldBe(["Bearer tok-1"]);
    }

    [Fact]
    public async Task Identity_token_asks_for_a_token_by_oauth2_post()
    {
        using var dir = new TempDir();
        string? form = null;
        var fake = new FakeRegistry((request, _) =>
        {
            switch (request.RequestUri!.AbsolutePath)
            {
                case "/v2/":
                    return FakeRegistry.Challenge("Bearer realm=\"https://auth.example/token\",service=\"reg\"");
                case "/token" when request.Method == HttpMethod.Post:
                    form = request.Content!.ReadAsStringAsync().GetAwaiter().GetResult();
                    return FakeRegistry.Json("""{"access_token":"tok-2"}""");
                case "/v2/app/blobs/sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae" when request.Headers.Authorization?.ToString() == "Bearer tok-2":
                    return FakeRegistry.Bytes("foo"u8.ToArray());
                default:
                    return null;
            }
        });
        using var client = new RegistryClient(FakeRegistry.Settings(fake, dir.Path) with
        {
            Credentials = new FixedCredentials("r.example", new RegistryCredential("", "") { IdentityToken = "refresh" }, NoCredentials.Instance),
        });
        var path = await client.FetchBlobAsync(ImageReference.Parse("r.example/app:1"), FakeRegistry.Blob("foo"u8.ToArray()), CancellationToken.None);
        (await File.ReadAllTextAsync(path)).ShouldBe("foo");
        form.ShouldNotBeNull();
        form.ShouldContain("grant_type=refresh_token");
        form.ShouldContain("refresh_token=refresh");
        form.ShouldContain("scope=repository%3Aapp%3Apull");
    }

    [Fact]
    public async Task Authorization_never_follows_a_redirect_to_another_host()
    {
        using var dir = new TempDir();
        var bytes = "layer bytes"u8.ToArray();
        var blob = FakeRegistry.Blob(bytes);
        var fake = new FakeRegistry((request, _) =>
        {
            if (request.RequestUri!.Host == "storage.example") return FakeRegistry.Bytes(bytes);
            return request.RequestUri.AbsolutePath switch
            {
                "/v2/" => FakeRegistry.Challenge("Basic realm=\"r\""),
                var p when p.Contains("/blobs/", StringComparison.Ordinal) => Redirect("https://storage.example/signed?x=1"),
                _ => null,
            };
        });
        using var client = new RegistryClient(FakeRegistry.Settings(fake, dir.Path) with
        {
            Credentials = new FixedCredentials("r.example", new RegistryCredential("u", "p"), NoCredentials.Instance),
        });
        await client.FetchBlobAsync(ImageReference.Parse("r.example/app:1"), blob, CancellationToken.None);
        fake.Seen.Single(s => s.Uri.Host == "r.example" && s.Uri.AbsolutePath.Contains("/blobs/", StringComparison.Ordinal)).Authorization.ShouldStartWith("Basic ");
        fake.Seen.Single(s => s.Uri.Host == "storage.example").Authorization.ShouldBeNull();
    }

    [Fact]
    public async Task Https_is_not_downgraded_by_a_redirect()
    {
        using var dir = new TempDir();
        var fake = new FakeRegistry((request, _) => request.RequestUri!.AbsolutePath switch
        {
            "/v2/" => FakeRegistry.Status(HttpStatusCode.OK),
            _ => Redirect("http://storage.example/blob"),
        });
        using var client = new RegistryClient(FakeRegistry.Settings(fake, dir.Path));
        var e = await Should.ThrowAsync<RegistryException>(() => client.FetchBlobAsync(ImageReference.Parse("r.example/app:1"), FakeRegistry.Blob([1]), CancellationToken.None));
        e.Message.ShouldContain("plain HTTP");
        fake.Seen.ShouldNotContain(s => s.Uri.Host == "storage.example");
    }

    internal static HttpResponseMessage Redirect(string location)
    {
        var response = FakeRegistry.Status(HttpStatusCode.TemporaryRedirect);
        response.Headers.Location = new Uri(location);
        return response;
    }
}
