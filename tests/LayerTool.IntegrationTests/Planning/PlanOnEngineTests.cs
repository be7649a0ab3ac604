using LayerTool.Image.Squash;
using System.Text.Json.Nodes;
using LayerTool.Build;
using LayerTool.Build.Planning;
using LayerTool.Docker.Squash;
using LayerTool.Docker;
using LayerTool.Docker.Images;
using LayerTool.IntegrationTests.Build;

namespace LayerTool.IntegrationTests.Planning;

/// <summary>
/// Plans run on the real engine with a real BuildKit backend (<see cref="PlanBackends"/>): TAG'd images are the
/// images BuildKit gives the truncated Dockerfile; COMPRESS keeps the filesystem and the history; failures and
/// cancellation leave no temporary tag or image.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class PlanOnEngineTests(EngineFixture engine) : IAsyncLifetime
{
    private readonly string _context = Directory.CreateTempSubdirectory("lt-plan-ctx-").FullName;
    private readonly string _cache = Directory.CreateTempSubdirectory("lt-plan-index-").FullName;
    private readonly string _name = "lt-plan-test-" + Guid.NewGuid().ToString("N")[..8];
    private readonly List<string> _created = [];

    public Task InitializeAsync()
    {
        File.WriteAllText(Path.Combine(_context, "file.txt"), "from the context\n");
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var image in _created.AsEnumerable().Reverse())
        {
            try
            {
                await engine.DockerAsync(["rmi", "-f", image]);
            }
            catch (InvalidOperationException)
            {
                // Already gone.
            }
        }
        Directory.Delete(_context, recursive: true);
        Directory.Delete(_cache, recursive: true);
    }

    /// <summary>Records what each squash gave, so the tests can check the intermediate images are gone.</summary>
    private sealed class RecordingSquash(ISquashService inner) : ISquashService
    {
        public List<string> Results { get; } = [];

        public async Task<SquashResult> SquashAsync(SquashRequest request, IProgress<SquashProgress>? progress, CancellationToken cancellationToken)
        {
            var result = await inner.SquashAsync(request, progress, cancellationToken);
            Results.Add(result.ImageId);
            return result;
        }
    }

    private (BuildPlanRunner Runner, CliBuildKitBackend Backend, RecordingSquash Squash) Runner(StringWriter? log = null)
    {
        var backend = PlanBackends.Create(engine, _context);
        // As BuildCommand.cs makes it: the engine squash over DockerImageEngine.
        var squash = new RecordingSquash(new EngineSquashService(new DockerImageEngine(engine.Connection), new EngineSquashSettings(_cache)));
        var runner = new BuildPlanRunner(backend, squash, new DockerBuildEngine(engine.Connection), new BuildLog(log ?? new StringWriter(), ProgressMode.Plain, false));
        return (runner, backend, squash);
    }

    private static BuildOptions Options(IReadOnlyList<string>? tags = null, Dictionary<string, string>? args = null) =>
        new("/unused", Tags: tags, BuildArgs: args, NetworkMode: "none");

    private string Tag(string suffix)
    {
        var tag = _name + ":" + suffix;
        _created.Add(tag);
        return tag;
    }

    /// <summary>Builds <paramref name="dockerfile"/> with the 20.10 client and BuildKit (no plan), as a user would.</summary>
    private async Task<string> BuildKitAsync(string dockerfile, string? target = null, Dictionary<string, string>? args = null)
    {
        var build = new StandardBuild(0, "reference build", dockerfile, target, args ?? [], [], new Dictionary<string, string>(), "none", false);
        var id = (await PlanBackends.Create(engine, _context).BuildAsync(build, CancellationToken.None)).ImageId;
        _created.Add(id);
        return id;
    }

    private async Task<bool> ExistsAsync(string image)
    {
        var r = await EngineFixture.RunAsync("docker", ["image", "inspect", image], EngineFixture.RepoRoot, CancellationToken.None,
            environment: new Dictionary<string, string> { ["DOCKER_HOST"] = engine.DockerHost });
        return r.ExitCode == 0;
    }

    private async Task ShouldLeaveNoTemporaryTagAsync(BuildPlan plan)
    {
        var left = await engine.DockerAsync(["images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", $"reference={BuildPlanner.TemporaryRepositoryPrefix}{plan.BuildId}-*"]);
        left.Trim().ShouldBeEmpty();
        foreach (var tag in plan.TemporaryTags) (await ExistsAsync(tag)).ShouldBeFalse(tag);
    }

    /// <summary>The user's Dockerfile cut before <paramref name="line"/>, with its TAG lines dropped: what BuildKit itself can build.</summary>
    private static string Truncated(string dockerfile, int line) =>
        string.Join('\n', dockerfile.Split('\n').Take(line - 1).Where(l => !l.StartsWith("TAG ", StringComparison.Ordinal)));

    /// <summary>Every config field equal, but the labels: the squash adds the base's name and digest.</summary>
    private static void ShouldHaveTheSameConfig(ImageSnapshot actual, ImageSnapshot expected)
    {
        foreach (var field in ImageSnapshot.ConfigFields.Where(f => f != "Labels"))
            actual.Config[field].ShouldBe(expected.Config[field], field);
        static Dictionary<string, string> Labels(ImageSnapshot s) =>
            JsonNode.Parse(s.Config["Labels"] == "null" ? "{}" : s.Config["Labels"])!.AsObject()
                .Where(kv => !kv.Key.StartsWith("org.opencontainers.image.base.", StringComparison.Ordinal))
                .ToDictionary(kv => kv.Key, kv => kv.Value!.ToJsonString(), StringComparer.Ordinal);
        Labels(actual).ShouldBe(Labels(expected));
    }

    [Fact]
    public async Task Each_TAG_is_the_image_BuildKit_gives_the_truncated_Dockerfile()
    {
        var dockerfile = $"""
            FROM busybox AS tools
            RUN echo tools > /tools
            TAG {Tag("tools")}

            FROM busybox AS app
            COPY file.txt /file.txt
            RUN echo one > /one
            TAG {Tag("one")} {Tag("one-too")}
            COPY --from=tools /tools /tools
            ENV STAGE=two
            TAG {Tag("two")}
            RUN echo three > /three
            """;
        var (runner, _, _) = Runner();
        var plan = BuildPlanner.Plan(dockerfile, Options(tags: [Tag("final")]));

        var result = await runner.RunAsync(plan, CancellationToken.None);

        result.TaggedImages.Select(t => t.Reference).ShouldBe([Tag("tools"), Tag("one"), Tag("one-too"), Tag("two")]);
        foreach (var tagged in result.TaggedImages)
        {
            var target = tagged.Line < 5 ? "tools" : "app";
            var reference = await BuildKitAsync(Truncated(dockerfile, tagged.Line), target);
            tagged.ImageId.ShouldBe(reference, $"TAG at line {tagged.Line}");
            (await engine.DockerAsync(["image", "inspect", "--format", "{{.Id}}", tagged.Reference])).Trim().ShouldBe(reference);
        }
        result.ImageId.ShouldBe(await BuildKitAsync(string.Join('\n', dockerfile.Split('\n').Where(l => !l.StartsWith("TAG ", StringComparison.Ordinal)))));
        await ShouldLeaveNoTemporaryTagAsync(plan);
    }

    [Fact]
    public async Task Under_no_cache_each_step_runs_once_and_the_final_image_is_built_on_the_TAGd_layers()
    {
        // Random bytes: a step that ran twice would leave different files in the TAG'd and the final image.
        var body = $"""
            FROM busybox AS app
            ARG SIZE=16
            RUN head -c $SIZE /dev/urandom > /first
            TAG {Tag("first")}
            ENV PHASE=two
            RUN head -c $SIZE /dev/urandom > /second
            TAG {Tag("second")}
            WORKDIR /data
            CMD ["sh"]
            """;
        var (runner, _, _) = Runner();
        var plan = BuildPlanner.Plan(body, Options(tags: [Tag("final")]) with { NoCache = true });

        var result = await runner.RunAsync(plan, CancellationToken.None);

        result.TaggedImages.Select(t => t.Reference).ShouldBe([Tag("first"), Tag("second")]);
        var first = await ImageSnapshot.TakeAsync(engine, Tag("first"));
        var second = await ImageSnapshot.TakeAsync(engine, Tag("second"));
        var final = await ImageSnapshot.TakeAsync(engine, Tag("final"));
        second.DiffIds.Take(first.LayerCount).ShouldBe(first.DiffIds);
        final.DiffIds.Take(second.LayerCount).ShouldBe(second.DiffIds);
        static string FileOf(ImageSnapshot s, string name) => s.Files.Single(f => f.Path.TrimStart('/') == name).ToString();
        FileOf(final, "first").ShouldBe(FileOf(first, "first"));
        FileOf(final, "second").ShouldBe(FileOf(second, "second"));
        // The same config and history as one BuildKit build of the Dockerfile without its TAGs.
        var plainId = await BuildKitAsync(string.Join('\n', body.Split('\n').Where(l => !l.StartsWith("TAG ", StringComparison.Ordinal))));
        var plain = await ImageSnapshot.TakeAsync(engine, plainId);
        ShouldHaveTheSameConfig(final, plain);
        final.LayerCount.ShouldBe(plain.LayerCount);
        var history = await engine.DockerAsync(["image", "history", "--no-trunc", "--format", "{{.CreatedBy}}", Tag("final")]);
        var plainHistory = await engine.DockerAsync(["image", "history", "--no-trunc", "--format", "{{.CreatedBy}}", plainId]);
        // The final build is the plain one; the TAGs replayed its fresh cache records after it.
        history.ShouldBe(plainHistory);
        plan.Steps.OfType<PlanBuild>().Count(b => b.ReplayOf is not null).ShouldBe(2);
        await ShouldLeaveNoTemporaryTagAsync(plan);
    }

    [Fact]
    public async Task With_the_base_recorded_TAGs_keep_BuildKits_IDs_and_only_the_final_image_differs_by_the_two_labels()
    {
        var dockerfile = $"""
            FROM busybox AS app
            COPY file.txt /file.txt
            TAG {Tag("recorded-one")}
            RUN echo two > /two
            """;
        var (runner, _, _) = Runner();
        var plan = BuildPlanner.Plan(dockerfile, Options(tags: [Tag("recorded-final")]) with { RecordBase = true });

        var result = await runner.RunAsync(plan, CancellationToken.None);

        result.TaggedImages.Single().ImageId.ShouldBe(await BuildKitAsync(Truncated(dockerfile, 3)));
        var reference = await BuildKitAsync(string.Join('\n', dockerfile.Split('\n').Where(l => !l.StartsWith("TAG ", StringComparison.Ordinal))));
        result.ImageId.ShouldNotBe(reference);
        var ours = await ImageSnapshot.TakeAsync(engine, result.ImageId);
        var theirs = await ImageSnapshot.TakeAsync(engine, reference);
        ShouldHaveTheSameConfig(ours, theirs);
        ours.DiffIds.ShouldBe(theirs.DiffIds);
        var labels = JsonNode.Parse(ours.Config["Labels"])!.AsObject();
        labels.Select(kv => kv.Key).Where(k => k.StartsWith("org.opencontainers.image.base.", StringComparison.Ordinal)).Order()
            .ShouldBe([LayerTool.Image.SquashConfig.BaseDigestLabel, LayerTool.Image.SquashConfig.BaseNameLabel]);
        labels[LayerTool.Image.SquashConfig.BaseNameLabel]!.GetValue<string>().ShouldBe("busybox");
        await ShouldLeaveNoTemporaryTagAsync(plan);
    }

    [Fact]
    public async Task COMPRESS_gives_the_base_layers_plus_one_the_same_files_and_the_whole_history()
    {
        var body = """
            FROM busybox
            RUN mkdir -p /data/sub && echo a > /data/a && echo b > /data/sub/b && ln -s /data/a /data/link
            COPY file.txt /data/file.txt
            RUN rm /data/sub/b && chmod 600 /data/a && chown 1:2 /data/file.txt && rm -f /etc/group
            """;
        var (runner, _, squash) = Runner();
        var plan = BuildPlanner.Plan(body + "\nCOMPRESS\n", Options(tags: [Tag("compressed")]));

        var result = await runner.RunAsync(plan, CancellationToken.None);

        var uncompressed = await BuildKitAsync(body);
        var busybox = await ImageSnapshot.TakeAsync(engine, "busybox:latest");
        var plain = await ImageSnapshot.TakeAsync(engine, uncompressed);
        var compressed = await ImageSnapshot.TakeAsync(engine, Tag("compressed"));
        compressed.LayerCount.ShouldBe(busybox.LayerCount + 1);
        compressed.DiffIds.Take(busybox.LayerCount).ShouldBe(busybox.DiffIds);
        compressed.Files.Select(f => f.ToString()).ShouldBe(plain.Files.Select(f => f.ToString()));
        ShouldHaveTheSameConfig(compressed, plain);
        var history = await engine.DockerAsync(["image", "history", "--no-trunc", "--format", "{{.CreatedBy}}", Tag("compressed")]);
        history.ShouldContain("mkdir -p /data/sub");
        history.ShouldContain("COPY file.txt /data/file.txt");
        history.ShouldContain("rm /data/sub/b");
        result.Compressions.Single().LayersAfter.ShouldBe(busybox.LayerCount + 1);
        result.Compressions.Single().LayersBefore.ShouldBe(plain.LayerCount);
        result.ImageId.ShouldBe(squash.Results.Single());
        await ShouldLeaveNoTemporaryTagAsync(plan);
    }

    [Fact]
    public async Task A_COMPRESS_mid_stage_redeclares_ARGs_and_keeps_ONBUILD_triggers_from_firing_until_the_final_config()
    {
        const string Body = """
            ARG WHO=world
            FROM busybox AS app
            ARG WHO
            ARG GREETING=hello
            ONBUILD RUN touch /fired-first
            RUN echo "$GREETING $WHO" > /one
            {0}
            RUN echo "$GREETING $WHO again" > /two
            ONBUILD RUN touch /fired-second
            RUN echo three > /three
            """;
        var args = new Dictionary<string, string> { ["GREETING"] = "hi" };
        var (runner, _, squash) = Runner();
        var plan = BuildPlanner.Plan(Body.Replace("{0}", "COMPRESS", StringComparison.Ordinal), Options(tags: [Tag("onbuild")], args: args));

        var result = await runner.RunAsync(plan, CancellationToken.None);

        var uncompressed = await BuildKitAsync(Body.Replace("{0}", "", StringComparison.Ordinal), args: args);
        var plain = await ImageSnapshot.TakeAsync(engine, uncompressed);
        var compressed = await ImageSnapshot.TakeAsync(engine, Tag("onbuild"));
        compressed.Files.Select(f => f.ToString()).ShouldBe(plain.Files.Select(f => f.ToString()));
        compressed.Files.ShouldNotContain(f => f.Path.StartsWith("fired", StringComparison.Ordinal));
        ShouldHaveTheSameConfig(compressed, plain);
        compressed.Config["OnBuild"].ShouldBe("""["RUN touch /fired-first","RUN touch /fired-second"]""");
        var busybox = await ImageSnapshot.TakeAsync(engine, "busybox:latest");
        compressed.LayerCount.ShouldBe(busybox.LayerCount + 1 + 2);
        (await engine.DockerAsync(["run", "--rm", "--network", "none", "--label", EngineFixture.TestLabel + "=1", Tag("onbuild"), "cat", "/one", "/two"]))
            .ShouldBe("hi world\nhi world again\n");
        // The triggers still fire in an image built FROM the result.
        var child = await BuildKitAsync($"FROM {Tag("onbuild")}\nRUN ls /fired-first /fired-second\n");
        child.ShouldStartWith("sha256:");
        result.Compressions.Single().Line.ShouldBe(7);
        (await ExistsAsync(squash.Results.Single())).ShouldBeFalse("the squashed intermediate image is removed");
        await ShouldLeaveNoTemporaryTagAsync(plan);
    }

    [Fact]
    public async Task A_failing_RUN_after_a_TAG_keeps_the_TAG_and_leaves_no_temporary_tag_or_image()
    {
        var dockerfile = $"""
            FROM busybox
            RUN echo one > /one
            TAG {Tag("before-failure")}
            COMPRESS
            RUN echo two > /two
            RUN exit 3
            """;
        var (runner, _, squash) = Runner();
        var plan = BuildPlanner.Plan(dockerfile, Options(tags: [Tag("never")]));

        var e = await Should.ThrowAsync<BuildException>(() => runner.RunAsync(plan, CancellationToken.None));

        e.Message.ShouldContain("exit 3");
        (await ExistsAsync(Tag("before-failure"))).ShouldBeTrue();
        (await ExistsAsync(Tag("never"))).ShouldBeFalse();
        (await ExistsAsync(squash.Results.Single())).ShouldBeFalse();
        await ShouldLeaveNoTemporaryTagAsync(plan);
    }

    [Fact]
    public async Task Cancelling_mid_build_leaves_nothing_temporary()
    {
        var dockerfile = $"""
            FROM busybox
            RUN echo {Guid.NewGuid():N} > /one
            COMPRESS
            RUN sleep 60
            """;
        var (runner, backend, squash) = Runner();
        using var cts = new CancellationTokenSource();
        backend.Started = build =>
        {
            if (build.Description.StartsWith("final", StringComparison.Ordinal)) cts.CancelAfter(TimeSpan.FromSeconds(3));
        };
        var plan = BuildPlanner.Plan(dockerfile, Options(tags: [Tag("cancelled")]));
        var started = DateTime.UtcNow;

        await Should.ThrowAsync<OperationCanceledException>(() => runner.RunAsync(plan, cts.Token));

        (DateTime.UtcNow - started).ShouldBeLessThan(TimeSpan.FromSeconds(50));
        (await ExistsAsync(Tag("cancelled"))).ShouldBeFalse();
        (await ExistsAsync(squash.Results.Single())).ShouldBeFalse();
        await ShouldLeaveNoTemporaryTagAsync(plan);
    }
}
