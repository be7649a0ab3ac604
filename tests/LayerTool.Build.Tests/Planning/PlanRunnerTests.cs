using LayerTool.Image.Squash;
using LayerTool.Docker;
using LayerTool.Build.Planning;
using LayerTool.Docker.Squash;
using LayerTool.Docker.Images;

namespace LayerTool.Build.Tests.Planning;

public sealed class PlanRunnerTests
{
    private readonly FakeEngine _engine = new();

    /// <summary>
    /// Builds by inventing an image per build: the generated Dockerfile's first FROM of the last stage names the
    /// base (a tag the fake engine has, else busybox); the ONBUILD lines after it are the image's triggers (the
    /// base's own fire and are dropped, as BuildKit does). Tags the result as asked.
    /// </summary>
    private sealed class FakeBackend(FakeEngine engine) : IBuildBackend
    {
        public List<StandardBuild> Builds { get; } = [];

        public Func<StandardBuild, CancellationToken, Task>? Before { get; set; }

        public string Name => "fake";

        public async Task<StandardBuildResult> BuildAsync(StandardBuild build, CancellationToken cancellationToken)
        {
            Builds.Add(build);
            if (Before is not null) await Before(build, cancellationToken);
            var lines = build.Dockerfile.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
            var from = lines.FindLastIndex(l => l.StartsWith("FROM ", StringComparison.Ordinal));
            var baseRef = lines[from].Split(' ')[1];
            var baseImage = await engine.InspectImageAsync(baseRef, cancellationToken) ?? await engine.InspectImageAsync("busybox:latest", cancellationToken);
            var triggers = lines.Skip(from + 1).Where(l => l.StartsWith("ONBUILD ", StringComparison.Ordinal)).Select(l => l["ONBUILD ".Length..]).ToList();
            var runs = lines.Skip(from + 1).Count(l => l.StartsWith("RUN ", StringComparison.Ordinal));
            var id = engine.NewId();
            engine.Images[id] = FakeEngine.Image(id, baseImage!.Config with { OnBuild = triggers.Count == 0 ? null : triggers },
                [.. baseImage.DiffIds, .. Enumerable.Range(0, runs).Select(i => $"sha256:run-{id[^6..]}-{i}")], 100);
            foreach (var tag in build.Tags) engine.Tags[tag] = id;
            return new StandardBuildResult(id, lines.Count, 0);
        }
    }

    /// <summary>A squash that gives the image's config on the base's layers plus one.</summary>
    private sealed class FakeSquash(FakeEngine engine) : ISquashService
    {
        public List<SquashRequest> Requests { get; } = [];

        public async Task<SquashResult> SquashAsync(SquashRequest request, IProgress<SquashProgress>? progress, CancellationToken cancellationToken)
        {
            Requests.Add(request);
            var image = await engine.InspectImageAsync(request.Image.ToString()!, cancellationToken) ?? throw new EngineException($"no image {request.Image}");
            var baseLayers = request.Base is null ? [] : (await engine.InspectImageAsync(request.Base.ToString()!, cancellationToken))!.DiffIds;
            var id = engine.NewId();
            engine.Images[id] = FakeEngine.Image(id, image.Config, [.. baseLayers, "sha256:squashed-" + id[^6..]], 50);
            foreach (var tag in request.Tags) engine.Tags[tag] = id;
            return new SquashResult(id, "sha256:squashed-" + id[^6..], image.DiffIds.Count, baseLayers.Count + 1, 100, 50, 10, []) { Tags = request.Tags };
        }
    }

    private (FakeBackend Backend, FakeSquash Squash, BuildPlanRunner Runner) Runner()
    {
        var backend = new FakeBackend(_engine);
        var squash = new FakeSquash(_engine);
        return (backend, squash, new BuildPlanRunner(backend, squash, _engine) { CleanupTimeout = TimeSpan.FromSeconds(5) });
    }

    private static BuildPlan Plan(string dockerfile, BuildOptions? options = null) =>
        BuildPlanner.Plan(dockerfile, options ?? new BuildOptions("/nonexistent"), "Dockerfile", "t1");

    private void ShouldHaveNoTemporaryTag() =>
        _engine.Tags.Keys.Where(k => k.StartsWith(BuildPlanner.TemporaryRepositoryPrefix, StringComparison.Ordinal)).ShouldBeEmpty();

    [Fact]
    public async Task A_plan_with_TAG_and_COMPRESS_keeps_only_the_TAGs_and_the_final_image()
    {
        var (backend, squash, runner) = Runner();
        var plan = Plan("FROM busybox AS app\nRUN one\nTAG app:one\nRUN two\nCOMPRESS\nRUN three\n", new BuildOptions("/x", Tags: ["app:final"]));

        var result = await runner.RunAsync(plan, CancellationToken.None);

        backend.Builds.Select(b => b.Description).ShouldBe(["TAG app:one (Dockerfile:3)", "stage app up to COMPRESS (Dockerfile:5)", "final image (stage app)"]);
        backend.Builds.ShouldAllBe(b => b.Target == "app");
        squash.Requests.Single().Base!.ToString().ShouldBe("busybox");
        result.TaggedImages.Single().ShouldBe(new TaggedImage("app:one", _engine.Tags["app:one"], 3));
        result.Compressions.Single().Line.ShouldBe(5);
        result.Compressions.Single().LayersAfter.ShouldBe(2);
        result.ImageId.ShouldBe(_engine.Tags["app:final"]);
        result.Tags.ShouldBe(["app:final"]);
        // The final image: the squashed layer plus the RUN after the COMPRESS.
        _engine.Images[result.ImageId].DiffIds.Count.ShouldBe(3);
        ShouldHaveNoTemporaryTag();
        _engine.Removed.ShouldBe(plan.TemporaryTags, ignoreOrder: true);
    }

    [Fact]
    public async Task Only_the_final_build_gets_the_base_labels_with_the_base_digest()
    {
        var (backend, _, runner) = Runner();
        var plan = Plan("FROM busybox AS app\nRUN one\nTAG app:one\nRUN two\n",
            new BuildOptions("/x", Tags: ["app:final"], Labels: new Dictionary<string, string> { ["k"] = "v" }) { RecordBase = true });

        await runner.RunAsync(plan, CancellationToken.None);

        backend.Builds[0].Labels.ShouldBeEmpty();
        var final = backend.Builds[^1].Labels;
        final["k"].ShouldBe("v");
        final[LayerTool.Image.SquashConfig.BaseNameLabel].ShouldBe("busybox");
        final[LayerTool.Image.SquashConfig.BaseDigestLabel].ShouldBe(_engine.Tags["busybox:latest"]);
    }

    [Fact]
    public async Task ONBUILD_triggers_do_not_reach_the_continuation_and_are_all_in_the_final_config()
    {
        var (backend, _, runner) = Runner();
        var plan = Plan("FROM busybox AS app\nONBUILD RUN first\nRUN one\nCOMPRESS\nONBUILD RUN second\nTAG app:after\nRUN two\n",
            new BuildOptions("/x", Tags: ["app:ob"]));
        var continuationBases = new List<IReadOnlyList<string>?>();
        backend.Before = async (build, ct) =>
        {
            var from = build.Dockerfile.Split('\n').First(l => l.StartsWith("FROM ", StringComparison.Ordinal)).Split(' ')[1];
            if (from.StartsWith(BuildPlanner.TemporaryRepositoryPrefix, StringComparison.Ordinal))
                continuationBases.Add((await _engine.InspectImageAsync(from, ct))!.Config.OnBuild);
        };

        var result = await runner.RunAsync(plan, CancellationToken.None);

        continuationBases.Count.ShouldBe(2);
        continuationBases.ShouldAllBe(o => o == null);
        _engine.Images[_engine.Tags["app:after"]].Config.OnBuild.ShouldBe(["RUN first", "RUN second"]);
        _engine.Images[result.ImageId].Config.OnBuild.ShouldBe(["RUN first", "RUN second"]);
        result.TaggedImages.Single().ImageId.ShouldBe(_engine.Tags["app:after"]);
        ShouldHaveNoTemporaryTag();
    }

    [Fact]
    public async Task A_failing_build_after_a_TAG_keeps_the_TAG_and_removes_every_temporary_tag()
    {
        var (backend, _, runner) = Runner();
        var plan = Plan("FROM busybox AS app\nRUN one\nTAG app:kept\nCOMPRESS\nRUN fails\n");
        backend.Before = (build, _) => build.Description.StartsWith("final", StringComparison.Ordinal)
            ? throw new BuildException("Dockerfile:5: The command 'fails' returned a non-zero code: 1")
            : Task.CompletedTask;

        var e = await Should.ThrowAsync<BuildException>(() => runner.RunAsync(plan, CancellationToken.None));

        e.Message.ShouldStartWith("Dockerfile:5:");
        _engine.Tags.ShouldContainKey("app:kept");
        ShouldHaveNoTemporaryTag();
        // After a failure the clean-up looks twice (a build the engine finishes late may tag its result).
        _engine.Removed.Count.ShouldBe(plan.TemporaryTags.Count * 2);
    }

    [Fact]
    public async Task Cancelling_mid_build_removes_every_temporary_tag()
    {
        var (backend, _, runner) = Runner();
        var plan = Plan("FROM busybox AS app\nRUN one\nCOMPRESS\nRUN two\nCOMPRESS\nRUN three\n");
        using var cts = new CancellationTokenSource();
        backend.Before = async (build, ct) =>
        {
            if (!build.Description.Contains("Dockerfile:5", StringComparison.Ordinal)) return;
            // The engine tags the temporary result just as the build is cancelled.
            _engine.Tags[build.Tags[0]] = _engine.Tags["busybox:latest"];
            await cts.CancelAsync();
            await Task.Delay(Timeout.Infinite, ct);
        };

        await Should.ThrowAsync<OperationCanceledException>(() => runner.RunAsync(plan, cts.Token));

        ShouldHaveNoTemporaryTag();
        _engine.Tags.ShouldContainKey("busybox:latest");
    }

    [Fact]
    public async Task A_COMPRESS_base_the_engine_lacks_fails_with_the_line()
    {
        var (_, squash, runner) = Runner();
        var plan = Plan("FROM busybox\nRUN one\nCOMPRESS nosuch:1\n");

        var e = await Should.ThrowAsync<BuildException>(() => runner.RunAsync(plan, CancellationToken.None));

        e.Message.ShouldBe("Dockerfile:3: COMPRESS base nosuch:1 is neither a stage, a TAG of this build nor an image the engine has");
        squash.Requests.ShouldBeEmpty();
        ShouldHaveNoTemporaryTag();
    }

    [Fact]
    public async Task Squash_flag_squashes_the_target_onto_its_FROM_and_tags_the_result()
    {
        var (_, squash, runner) = Runner();
        var plan = Plan("FROM busybox\nRUN one\nRUN two\n", new BuildOptions("/x", Tags: ["sq:1"], Squash: true, Labels: new Dictionary<string, string> { ["k"] = "v" }));

        var result = await runner.RunAsync(plan, CancellationToken.None);

        squash.Requests.Single().Base!.ToString().ShouldBe("busybox");
        squash.Requests.Single().Tags.ShouldBe(["sq:1"]);
        plan.Steps.OfType<PlanBuild>().Single().Build.Labels["k"].ShouldBe("v");
        result.ImageId.ShouldBe(_engine.Tags["sq:1"]);
        result.Compressions.Single().Line.ShouldBe(0);
        ShouldHaveNoTemporaryTag();
    }
}
