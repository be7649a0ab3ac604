using LayerTool.Image;
using LayerTool.Docker;
using LayerTool.Build.Execution;
using LayerTool.Build.Planning;
using SquashConfig = LayerTool.Image.SquashConfig;
using LayerTool.Docker.Images;

namespace LayerTool.Build.Tests;

/// <summary>The base labels a build records for the final stage's FROM (<see cref="BaseLabels"/>): both builders, final image only.</summary>
public sealed class BaseLabelsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lt-base-labels-").FullName;
    private readonly FakeEngine _engine = new();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static EngineImage Image(string id, params string[] repoDigests) =>
        FakeEngine.Image(id, new ContainerConfig(), [], 1) with { RepoDigests = repoDigests };

    [Fact]
    public void The_digest_is_the_references_repo_digest_else_the_first_else_the_image_id()
    {
        const string Mine = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
        const string Other = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
        BaseLabels.DigestOf("registry.example/team/base:v1", Image("sha256:id", $"mirror.example/base@{Other}", $"registry.example/team/base@{Mine}")).ShouldBe(Mine);
        BaseLabels.DigestOf("base:v1", Image("sha256:id", $"mirror.example/base@{Other}")).ShouldBe(Other);
        BaseLabels.DigestOf("base:v1", Image("sha256:id")).ShouldBe("sha256:id");
        BaseLabels.For("base:v1", Image("sha256:id"))[SquashConfig.BaseNameLabel].ShouldBe("base:v1");
    }

    [Fact]
    public void The_user_setting_either_label_turns_the_recording_off()
    {
        BaseLabels.UserSets(new Dictionary<string, string> { [SquashConfig.BaseDigestLabel] = "x" }, "FROM a\n").ShouldBeTrue();
        BaseLabels.UserSets(null, $"FROM a\nLABEL {SquashConfig.BaseNameLabel}=mine\n").ShouldBeTrue();
        BaseLabels.UserSets(new Dictionary<string, string> { ["k"] = "v" }, "FROM a\n").ShouldBeFalse();
    }

    [Fact]
    public void The_planner_asks_for_the_base_on_the_final_build_only_following_stages_to_their_image()
    {
        const string Dockerfile = "FROM busybox AS b\nRUN one\nTAG app:one\nFROM b AS app\nRUN two\n";
        var plan = BuildPlanner.Plan(Dockerfile, new BuildOptions("/x", Tags: ["app:final"]) { RecordBase = true }, "Dockerfile", "t1");
        var builds = plan.Steps.OfType<PlanBuild>().ToList();
        builds[^1].Build.RecordBaseOf.ShouldBe("busybox");
        builds[..^1].ShouldAllBe(b => b.Build.RecordBaseOf == null);

        BuildPlanner.Plan(Dockerfile, new BuildOptions("/x"), "Dockerfile", "t1").Steps.OfType<PlanBuild>().ShouldAllBe(b => b.Build.RecordBaseOf == null);
        BuildPlanner.Plan("FROM scratch\nCOPY a /a\n", new BuildOptions("/x") { RecordBase = true }, "Dockerfile", "t1")
            .Steps.OfType<PlanBuild>().ShouldAllBe(b => b.Build.RecordBaseOf == null);
        BuildPlanner.Plan(Dockerfile, new BuildOptions("/x", Labels: new Dictionary<string, string> { [SquashConfig.BaseNameLabel] = "mine" }) { RecordBase = true },
            "Dockerfile", "t1").Steps.OfType<PlanBuild>().ShouldAllBe(b => b.Build.RecordBaseOf == null);
    }

    [Fact]
    public async Task The_classic_executor_labels_the_final_image_with_the_base_of_its_stage_chain()
    {
        var busybox = _engine.Tags["busybox:latest"];
        _engine.Images[busybox] = _engine.Images[busybox] with { RepoDigests = ["busybox@sha256:3333333333333333333333333333333333333333333333333333333333333333"] };
        await File.WriteAllTextAsync(Path.Combine(_dir, "Dockerfile"), "FROM busybox AS b\nRUN one\nFROM b\nLABEL k=v\nRUN two\n");
        var output = new StringWriter();
        var options = new BuildOptions(_dir, Tags: ["final:1"]) { RecordBase = true };
        var result = await new BuildExecutor(_engine, null, null, options, new BuildLog(output, ProgressMode.Plain, false)).BuildAsync(CancellationToken.None);

        var labels = _engine.Images[result.ImageId].Config.Labels!;
        labels[SquashConfig.BaseNameLabel].ShouldBe("busybox");
        labels[SquashConfig.BaseDigestLabel].ShouldBe("sha256:3333333333333333333333333333333333333333333333333333333333333333");
        labels["k"].ShouldBe("v");
        output.ToString().ShouldContain("Step 5/5 : RUN two");
        output.ToString().ShouldContain($"Recording the base image: LABEL \"{SquashConfig.BaseDigestLabel}\"='sha256:3333333333333333333333333333333333333333333333333333333333333333' \"{SquashConfig.BaseNameLabel}\"='busybox'");

        var plain = await new BuildExecutor(_engine, null, null, new BuildOptions(_dir), new BuildLog(new StringWriter(), ProgressMode.Plain, false)).BuildAsync(CancellationToken.None);
        (_engine.Images[plain.ImageId].Config.Labels ?? new Dictionary<string, string>()).ShouldNotContainKey(SquashConfig.BaseNameLabel);
    }
}
