using LayerTool.Build;
using LayerTool.Cli.Commands;

namespace LayerTool.Cli.Tests;

public sealed class BuildCommandTests
{
    private static readonly Dictionary<string, string> Env = new() { ["FROM_ENV"] = "env-value", ["HOME"] = "/home/me" };

    private static BuildOptions Bind(params string[] args)
    {
        var command = new BuildCommand(new CliContext(TextWriter.Null, TextWriter.Null, () => TextReader.Null, "/work"), n => Env.GetValueOrDefault(n));
        var result = command.Parse(args);
        result.Errors.ShouldBeEmpty();
        return command.Bind(result);
    }

    [Fact]
    public void Docker_flags_become_one_options_record()
    {
        var o = Bind("ctx", "-f", "other/Dockerfile", "-t", "a:1", "--tag", "b:2", "--build-arg", "K=V", "--build-arg", "FROM_ENV", "--build-arg", "UNSET",
            "--target", "final", "--network", "none", "--no-cache", "--pull", "-q", "--iidfile", "iid", "--label", "x=y", "--progress", "json", "--squash");
        o.ContextDirectory.ShouldBe("/work/ctx");
        o.DockerfilePath.ShouldBe("/work/other/Dockerfile");
        o.Tags.ShouldBe(["a:1", "b:2"]);
        o.BuildArgs!["K"].ShouldBe("V");
        o.BuildArgs["FROM_ENV"].ShouldBe("env-value");
        o.BuildArgs.ContainsKey("UNSET").ShouldBeFalse();
        o.Target.ShouldBe("final");
        o.NetworkMode.ShouldBe("none");
        o.NoCache.ShouldBeTrue();
        o.Pull.ShouldBeTrue();
        o.Quiet.ShouldBeTrue();
        o.ImageIdFile.ShouldBe("/work/iid");
        o.Labels!["x"].ShouldBe("y");
        o.Progress.ShouldBe(ProgressMode.Json);
        o.Squash.ShouldBeTrue();
        o.CacheDirectory.ShouldBe("/home/me/.cache/layertool/build");
        o.RecordBase.ShouldBeTrue();
        Bind(".", "--no-base-labels").RecordBase.ShouldBeFalse();
    }

    [Fact]
    public void Defaults_are_dockers()
    {
        var o = Bind(".");
        o.DockerfilePath.ShouldBeNull();
        o.NetworkMode.ShouldBeNull();
        o.Progress.ShouldBe(ProgressMode.Auto);
        o.Tags.ShouldBeEmpty();
    }

    [Fact]
    public void An_unknown_progress_mode_is_a_usage_error()
    {
        var command = new BuildCommand(new CliContext(TextWriter.Null, TextWriter.Null, () => TextReader.Null, "/work"), _ => null);
        command.Parse(["--progress", "fancy", "."]).Errors.ShouldNotBeEmpty();
    }
}
