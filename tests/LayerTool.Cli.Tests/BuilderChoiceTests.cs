using LayerTool.Cli.Commands;
using LayerTool.Docker.BuildKit;

namespace LayerTool.Cli.Tests;

public sealed class BuilderChoiceTests
{
    private static BuilderSelection Bind(Dictionary<string, string> env, params string[] args)
    {
        var command = new BuildCommand(new CliContext(TextWriter.Null, TextWriter.Null, () => TextReader.Null, "/work"), n => env.GetValueOrDefault(n));
        var result = command.Parse(args);
        result.Errors.ShouldBeEmpty();
        return command.BindBuilder(result);
    }

    [Fact]
    public void The_default_is_auto() => Bind([], ".").Choice.ShouldBe(BuilderChoice.Auto);

    [Fact]
    public void The_environment_sets_the_default_and_the_flag_wins()
    {
        Bind(new() { ["LAYERTOOL_BUILDER"] = "Classic" }, ".").Choice.ShouldBe(BuilderChoice.Classic);
        Bind(new() { ["LAYERTOOL_BUILDER"] = "classic" }, "--builder", "buildkit", ".").Choice.ShouldBe(BuilderChoice.BuildKit);
    }

    [Fact]
    public void An_unknown_builder_in_the_environment_is_an_error() =>
        Should.Throw<CliException>(() => Bind(new() { ["LAYERTOOL_BUILDER"] = "podman" }, ".")).Message.ShouldContain("LAYERTOOL_BUILDER=podman");

    [Fact]
    public void An_unknown_builder_flag_is_a_usage_error()
    {
        var command = new BuildCommand(new CliContext(TextWriter.Null, TextWriter.Null, () => TextReader.Null, "/work"), _ => null);
        command.Parse(["--builder", "podman", "."]).Errors.ShouldNotBeEmpty();
    }

    [Theory]
    [InlineData("tty")]
    [InlineData("quiet")]
    public void Tty_and_quiet_are_progress_modes(string mode) => Bind([], "--progress", mode, ".").Progress.ShouldBe(mode);

    [Theory]
    [InlineData(null, "linux", "1.41", true)]
    [InlineData("2", "linux", "1.44", true)]
    [InlineData("1", "linux", "1.44", false)]
    [InlineData(null, "windows", "1.41", false)]
    [InlineData(null, "linux", "1.38", false)]
    public void The_engine_has_BuildKit_by_its_ping_and_API(string? builderVersion, string os, string api, bool expected) =>
        BuilderProbe.Decide(builderVersion, os, Version.Parse(api)).Available.ShouldBe(expected);
}
