using LayerTool.Cli.Commands;

namespace LayerTool.Cli.Tests.Plans;

public sealed class PlanRunCommandTests
{
    private static PlanRunCommands Commands(Dictionary<string, string>? env = null) =>
        new(new CliContext(TextWriter.Null, TextWriter.Null, () => TextReader.Null, "/work"), n => env?.GetValueOrDefault(n));

    private static PlanRunCliOptions Bind(params string[] args)
    {
        var commands = Commands();
        var result = commands.Run.Parse(args);
        result.Errors.ShouldBeEmpty();
        return commands.Bind(result);
    }

    [Fact]
    public void The_defaults_are_the_local_engine_one_job_per_engine_and_auto_progress()
    {
        var options = Bind("plans/plan.yaml");
        options.PlanPath.ShouldBe("/work/plans/plan.yaml");
        options.Jobs.ShouldBeNull();
        options.Engines.ShouldBeEmpty();
        options.Dind.ShouldBe(0);
        options.Registry.ShouldBeNull();
        options.Progress.ShouldBe("auto");
        options.NoCache.ShouldBeFalse();
        options.Builder.ShouldBe(BuilderChoice.Auto);
    }

    [Fact]
    public void Every_flag_reaches_the_options()
    {
        var options = Bind("/p.yaml", "--jobs", "3", "--engine", "unix:///run/a.sock", "--engine", "ci-box", "--dind", "2", "--dind-image", "my/dind:1",
            "--registry", "127.0.0.1:5000/team", "--progress", "json", "--no-cache", "--builder", "classic", "--network", "none");
        options.Jobs.ShouldBe(3);
        options.Engines.ShouldBe(["unix:///run/a.sock", "ci-box"]);
        options.Dind.ShouldBe(2);
        options.DindImage.ShouldBe("my/dind:1");
        options.Registry.ShouldBe("127.0.0.1:5000/team");
        options.Progress.ShouldBe("json");
        options.NoCache.ShouldBeTrue();
        options.Builder.ShouldBe(BuilderChoice.Classic);
        options.NetworkMode.ShouldBe("none");
    }

    [Theory]
    [InlineData("--jobs", "0")]
    [InlineData("--dind", "-1")]
    [InlineData("--progress", "fancy")]
    [InlineData("--builder", "podman")]
    public void Bad_values_are_usage_errors(string flag, string value) =>
        Commands().Run.Parse(["/p.yaml", flag, value]).Errors.ShouldNotBeEmpty();

    [Fact]
    public void The_builder_comes_from_the_environment_when_no_flag_names_one()
    {
        var commands = Commands(new() { ["LAYERTOOL_BUILDER"] = "buildkit" });
        commands.Bind(commands.Run.Parse(["/p.yaml"])).Builder.ShouldBe(BuilderChoice.BuildKit);
    }
}
