using System.Net;
using System.Net.Sockets;
using LayerTool.Build;
using LayerTool.Build.Execution;
using LayerTool.Docker;
using LayerTool.Docker.Images;
using LayerTool.Docker.Squash;

namespace LayerTool.IntegrationTests.Build;

/// <summary>TAG, COMPRESS, the build cache, failures and ADD of a URL, against the real engine.</summary>
[Collection(EngineCollection.Name)]
public sealed class BuildBehaviourTests(EngineFixture engine) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lt-build-it-").FullName;
    private readonly string _cache = Directory.CreateTempSubdirectory("lt-build-cache-").FullName;
    private readonly List<string> _images = [];

    public void Dispose()
    {
        if (_images.Count > 0)
            EngineFixture.RunAsync("docker", ["rmi", "-f", .. _images], _dir, CancellationToken.None, null,
                new Dictionary<string, string> { ["DOCKER_HOST"] = engine.DockerHost }).GetAwaiter().GetResult();
        Directory.Delete(_dir, true);
        Directory.Delete(_cache, true);
    }

    private void Write(string path, string text)
    {
        var full = Path.Combine(_dir, path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        File.WriteAllText(full, text);
    }

    private string Tag(string name)
    {
        var tag = $"layertool-it/{name}:{Guid.NewGuid().ToString("N")[..8]}";
        _images.Add(tag);
        return tag;
    }

    private async Task<(BuildResult Result, string Output, string BuildId)> BuildAsync(string dockerfile, BuildOptions? options = null, StringWriter? output = null,
        CancellationToken ct = default)
    {
        Write("Dockerfile", dockerfile);
        output ??= new StringWriter();
        var squash = new EngineSquashService(new DockerImageEngine(engine.Connection), new EngineSquashSettings(Path.Combine(_cache, "index")));
        var executor = new BuildExecutor(new DockerBuildEngine(engine.Connection), squash, null,
            options ?? new BuildOptions(_dir, NetworkMode: "none", CacheDirectory: _cache), new BuildLog(TextWriter.Synchronized(output), ProgressMode.Plain, false));
        try
        {
            var result = await executor.BuildAsync(ct);
            return (result, output.ToString(), executor.BuildId);
        }
        finally
        {
            (await engine.DockerAsync(["ps", "-aq", "--filter", "name=" + BuildExecutor.ContainerNamePrefix + executor.BuildId], cancellationToken: CancellationToken.None)).Trim()
                .ShouldBeEmpty("the build left containers behind");
        }
    }

    private async Task<string> ImageIdAsync(string reference) => (await engine.DockerAsync(["image", "inspect", "--format", "{{.Id}}", reference])).Trim();

    [Fact]
    public async Task Tag_names_the_image_a_build_truncated_there_gives()
    {
        var mid = Tag("mid");
        var full = $"FROM busybox\nRUN echo one > /one\nENV A=1\nTAG {mid}\nRUN echo two > /two\nENV B=2\n";
        var (result, _, _) = await BuildAsync(full, new BuildOptions(_dir, Tags: [Tag("full")], NetworkMode: "none", CacheDirectory: _cache));
        var tagged = await ImageIdAsync(mid);
        result.TaggedImages.Single().ImageId.ShouldBe(tagged);

        var truncated = Tag("truncated");
        var (cut, _, _) = await BuildAsync("FROM busybox\nRUN echo one > /one\nENV A=1\n", new BuildOptions(_dir, Tags: [truncated], NetworkMode: "none", CacheDirectory: _cache));
        cut.ImageId.ShouldBe(tagged);

        var fresh = Tag("fresh");
        await BuildAsync("FROM busybox\nRUN echo one > /one\nENV A=1\n", new BuildOptions(_dir, Tags: [fresh], NetworkMode: "none", NoCache: true));
        var a = await ImageSnapshot.TakeAsync(engine, mid);
        var b = await ImageSnapshot.TakeAsync(engine, fresh);
        a.Config.ShouldBe(b.Config);
        a.Files.ShouldBe(b.Files);
    }

    [Fact]
    public async Task Compress_gives_one_layer_on_the_base_with_the_same_filesystem_and_keeps_the_history()
    {
        Write("a.txt", "alpha");
        var steps = "FROM busybox\nRUN mkdir /work && echo 1 > /work/one && rm /bin/sed\nCOPY a.txt /work/\nRUN echo 2 > /work/two && rm /work/one\nENV X=1\n";
        var plain = Tag("plain");
        var compressed = Tag("compressed");
        await BuildAsync(steps, new BuildOptions(_dir, Tags: [plain], NetworkMode: "none", CacheDirectory: _cache));
        var (result, output, _) = await BuildAsync(steps + "COMPRESS\nCMD [\"sh\"]\n", new BuildOptions(_dir, Tags: [compressed], NetworkMode: "none", CacheDirectory: _cache));
        output.ShouldContain("Compressed");

        var baseSnap = await ImageSnapshot.TakeAsync(engine, "busybox:latest");
        var plainSnap = await ImageSnapshot.TakeAsync(engine, plain);
        var squashed = await ImageSnapshot.TakeAsync(engine, compressed);
        squashed.LayerCount.ShouldBe(baseSnap.LayerCount + 1);
        squashed.DiffIds.Take(baseSnap.LayerCount).ShouldBe(baseSnap.DiffIds);
        squashed.Files.ShouldBe(plainSnap.Files);
        foreach (var field in ImageSnapshot.ConfigFields.Where(f => f != "Labels"))
            squashed.Config[field].ShouldBe(plainSnap.Config[field], field);
        squashed.Config["Labels"].ShouldContain("org.opencontainers.image.base.name"); // the squash records its base
        result.Compressions.Single().LayersAfter.ShouldBe(baseSnap.LayerCount + 1);
        var history = await engine.DockerAsync(["history", "--no-trunc", "--format", "{{.CreatedBy}}", compressed]);
        history.ShouldContain("echo 2 > /work/two");
        history.ShouldContain("ENV X=1");
    }

    [Fact]
    public async Task Several_tags_and_compresses_in_one_build()
    {
        var first = Tag("first");
        var second = Tag("second");
        var (result, _, _) = await BuildAsync($"FROM busybox\nRUN echo 1 > /1\nRUN echo 2 > /2\nCOMPRESS\nTAG {first}\nRUN echo 3 > /3\nRUN echo 4 > /4\nCOMPRESS {first}\nTAG {second}\n");
        result.Compressions.Count.ShouldBe(2);
        var a = await ImageSnapshot.TakeAsync(engine, first);
        var b = await ImageSnapshot.TakeAsync(engine, second);
        b.LayerCount.ShouldBe(a.LayerCount + 1);
        b.DiffIds.Take(a.LayerCount).ShouldBe(a.DiffIds);
        b.Files.Select(f => f.Path).ShouldContain("4");
    }

    [Fact]
    public async Task An_identical_rebuild_reuses_every_step_and_a_changed_file_rebuilds_from_its_first_copy()
    {
        Write("a.txt", "a");
        Write("b.txt", "b");
        const string dockerfile = "FROM busybox\nRUN echo one > /one\nCOPY a.txt /a\nRUN echo two > /two\nCOPY b.txt /b\nRUN echo three > /three\nCOPY b.txt /b2\n";
        var (first, _, _) = await BuildAsync(dockerfile);
        var (second, output, _) = await BuildAsync(dockerfile);
        second.CachedSteps.ShouldBe(6);
        second.ImageId.ShouldBe(first.ImageId);
        output.ShouldNotContain("Running in");

        File.SetLastWriteTimeUtc(Path.Combine(_dir, "a.txt"), DateTime.UtcNow.AddDays(-1));
        Write("b.txt", "changed");
        var (third, output3, _) = await BuildAsync(dockerfile);
        third.CachedSteps.ShouldBe(3);
        output3.Split("Using cache").Length.ShouldBe(4);
        third.ImageId.ShouldNotBe(first.ImageId);
    }

    [Fact]
    public async Task A_failing_run_names_its_line_leaves_no_container_and_tags_nothing()
    {
        var tag = Tag("never");
        var e = await Should.ThrowAsync<BuildException>(() => BuildAsync("FROM busybox\nRUN echo ok\nRUN echo failing && exit 7\nRUN echo never\n",
            new BuildOptions(_dir, Tags: [tag], NetworkMode: "none", NoCache: true)));
        e.Message.ShouldBe("Dockerfile:3: The command '/bin/sh -c echo failing && exit 7' returned a non-zero code: 7");
        var tagged = await EngineFixture.RunAsync("docker", ["image", "inspect", tag], _dir, CancellationToken.None, null,
            new Dictionary<string, string> { ["DOCKER_HOST"] = engine.DockerHost });
        tagged.ExitCode.ShouldNotBe(0);
    }

    [Fact]
    public async Task Cancelling_in_the_middle_of_a_run_leaves_no_container()
    {
        using var cts = new CancellationTokenSource();
        var output = new StringWriter();
        var build = BuildAsync("FROM busybox\nRUN echo started && sleep 60\n", new BuildOptions(_dir, NetworkMode: "none", NoCache: true), output, cts.Token);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!output.ToString().Contains("\nstarted\n", StringComparison.Ordinal) && DateTime.UtcNow < deadline) await Task.Delay(50);
        output.ToString().ShouldContain("\nstarted\n");
        await cts.CancelAsync();
        await Should.ThrowAsync<OperationCanceledException>(() => build);
    }

    [Fact]
    public async Task Cancelling_while_a_container_is_being_created_leaves_no_container()
    {
        using var cts = new CancellationTokenSource();
        var output = new StringWriter();
        var build = BuildAsync("FROM busybox\nRUN echo started && sleep 60\n", new BuildOptions(_dir, NetworkMode: "none", NoCache: true), output, cts.Token);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!output.ToString().Contains("Step 2/2", StringComparison.Ordinal) && DateTime.UtcNow < deadline) await Task.Delay(5);
        await cts.CancelAsync();
        await Should.ThrowAsync<OperationCanceledException>(() => build);
    }

    [Fact]
    public async Task A_missing_base_image_fails_on_the_from_line_and_leaves_no_container()
    {
        var e = await Should.ThrowAsync<BuildException>(() => BuildAsync("FROM 127.0.0.1:9/layertool/missing:1\nRUN true\n"));
        e.Message.ShouldStartWith("Dockerfile:1: cannot get base image 127.0.0.1:9/layertool/missing:1");
    }

    [Fact]
    public async Task Add_of_a_url_downloads_it_like_docker()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        using var http = new HttpListener();
        listener.Stop();
        http.Prefixes.Add($"http://127.0.0.1:{port}/");
        http.Start();
        using var stop = new CancellationTokenSource();
        var server = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                HttpListenerContext ctx;
                try { ctx = await http.GetContextAsync(); }
                catch (HttpListenerException) { break; }
                catch (ObjectDisposedException) { break; }
                var body = "downloaded content\n"u8.ToArray();
                ctx.Response.Headers["Last-Modified"] = "Tue, 01 Oct 2024 10:00:00 GMT";
                ctx.Response.ContentLength64 = body.Length;
                await ctx.Response.OutputStream.WriteAsync(body);
                ctx.Response.Close();
            }
        });
        try
        {
            var dockerfile = $"FROM busybox\nADD http://127.0.0.1:{port}/files/remote.txt /downloads/\nADD http://127.0.0.1:{port}/other.txt /renamed.txt\n";
            Write("Dockerfile", dockerfile);
            var dockerTag = Tag("add-url-docker");
            var oursTag = Tag("add-url-ours");
            var docker = await EngineFixture.RunAsync("docker", ["build", "-q", "--network", "none", "-t", dockerTag, _dir], _dir, CancellationToken.None, null,
                new Dictionary<string, string> { ["DOCKER_HOST"] = engine.DockerHost, ["DOCKER_BUILDKIT"] = "0" });
            docker.ExitCode.ShouldBe(0, docker.StdErr);
            await BuildAsync(dockerfile, new BuildOptions(_dir, Tags: [oursTag], NetworkMode: "none", NoCache: true));
            var expected = await ImageSnapshot.TakeAsync(engine, dockerTag);
            var actual = await ImageSnapshot.TakeAsync(engine, oursTag);
            actual.Files.ShouldBe(expected.Files);
            actual.Files.ShouldContain(f => f.Path == "downloads/remote.txt" && f.Mode == 0x180);
        }
        finally
        {
            await stop.CancelAsync();
            http.Stop();
            await server;
        }
    }
}
