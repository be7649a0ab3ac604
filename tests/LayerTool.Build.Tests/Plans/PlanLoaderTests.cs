using LayerTool.Build.Plans;

namespace LayerTool.Build.Tests.Plans;

/// <summary>
/// Data-driven plan cases: Data/Plans/refused/NAME/ holds a plan.yaml that must be refused with exactly the
/// message in error.txt (<c>{dir}</c> stands for the case's directory); Data/Plans/valid/NAME/ holds a plan whose
/// <c>plan graph</c> text must equal graph.txt.
/// </summary>
public sealed class PlanLoaderTests
{
    public static string DataDirectory => Path.Combine(AppContext.BaseDirectory, "Data", "Plans");

    public static TheoryData<string> RefusedCases() => Cases("refused");

    public static TheoryData<string> ValidCases() => Cases("valid");

    private static TheoryData<string> Cases(string kind) =>
        [.. Directory.GetDirectories(Path.Combine(DataDirectory, kind)).Select(d => Path.GetFileName(d)!).Order(StringComparer.Ordinal)];

    [Theory]
    [MemberData(nameof(RefusedCases))]
    public void Refused_plans_name_the_file_and_line(string name)
    {
        var dir = Path.Combine(DataDirectory, "refused", name);
        var expected = File.ReadAllText(Path.Combine(dir, "error.txt")).TrimEnd('\n').Replace("{dir}", dir, StringComparison.Ordinal);
        var e = Should.Throw<PlanException>(() => PlanGraph.Load("plan.yaml", dir));
        e.Message.ShouldBe(expected);
        e.Location.ShouldNotBeNull().File.ShouldBe("plan.yaml");
        e.Message.ShouldStartWith($"plan.yaml:{e.Location.Value.Line}: ");
    }

    [Theory]
    [MemberData(nameof(ValidCases))]
    public void Valid_plans_give_the_expected_graph(string name)
    {
        var dir = Path.Combine(DataDirectory, "valid", name);
        var graph = PlanGraph.Load("plan.yaml", dir);
        PlanGraphFormatter.Format(graph, PlanGraphFormat.Text).ShouldBe(File.ReadAllText(Path.Combine(dir, "graph.txt")));
    }

    [Fact]
    public void The_map_form_reads_every_field_and_resolves_paths_from_the_plan_directory()
    {
        var dir = Path.Combine(DataDirectory, "valid", "list-form");
        var plan = PlanLoader.Load(Path.Combine(dir, "plan.yaml"));
        plan.Path.ShouldBe(Path.Combine(dir, "plan.yaml"));
        plan.Registry.ShouldBe("registry.example:5000/team");
        plan.Images.Select(i => i.Name).ShouldBe(["tools", "team/base", "app"]);
        var tools = plan.Images[0];
        tools.Context.ShouldBe(Path.Combine(dir, "tools"));
        tools.Dockerfile.ShouldBe(Path.Combine(dir, "tools", "Dockerfile"));
        tools.Outputs.ShouldBe(PlanOutputs.Engine);
        tools.Location.ShouldBe(new PlanLocation(Path.Combine(dir, "plan.yaml"), 4, 11));
        var baseImage = plan.Images[1];
        baseImage.Dockerfile.ShouldBe(Path.Combine(dir, "dockerfiles", "base.Dockerfile"));
        baseImage.Tags.ShouldBe(["team/base:2024.1", "base-alias"]);
        baseImage.Outputs.ShouldBe(PlanOutputs.Engine | PlanOutputs.Registry);
        baseImage.EffectiveRepository(plan.Registry).ShouldBe("registry.example:5000/team/team/base");
        var app = plan.Images[2];
        app.BuildArgs.ShouldBe(new Dictionary<string, string> { ["VERSION"] = "3", ["DEBUG"] = "true" });
        app.DependsOn.ShouldBe(["tools"]);
        app.DependsOnLocations.Single().Line.ShouldBe(16);
        app.Outputs.ShouldBe(PlanOutputs.Registry);
        app.EffectiveRepository(plan.Registry).ShouldBe("registry.example:5000/other/app");
        app.Target.ShouldBeNull();
    }

    [Fact]
    public void A_missing_plan_file_is_refused_by_name()
    {
        var e = Should.Throw<PlanException>(() => PlanLoader.Load("no-such-plan.yaml", DataDirectory));
        e.Message.ShouldBe("no-such-plan.yaml: no such plan file");
    }

    [Theory]
    [InlineData("base", null)]
    [InlineData("team/base", null)]
    [InlineData("a.b-c__d/e", null)]
    [InlineData("base:1", "a name is a repository path without a tag or digest (tags go under tags:)")]
    [InlineData("Base", "invalid reference format: repository name must be lowercase")]
    [InlineData("-base", "invalid reference format")]
    public void Image_names_are_repository_paths(string name, string? error) =>
        PlanLoader.ImageName(name).ShouldBe(error);
}
