using LayerTool.Cli.Commands;

namespace LayerTool.Cli.Tests;

/// <summary><c>layertool rebase</c>'s flags: the registry mode and its validation (nothing runs).</summary>
public sealed class RebaseCommandTests
{
    private static readonly Dictionary<string, string> Env = new() { ["HOME"] = "/home/me" };

    private static RebaseCommand Command() => new(new CliContext(TextWriter.Null, TextWriter.Null, () => TextReader.Null, "/work"), n => Env.GetValueOrDefault(n));

    private static RebaseOptions Bind(params string[] args)
    {
        var command = Command();
        var result = command.Parse(args);
        result.Errors.ShouldBeEmpty();
        return command.Bind(result);
    }

    [Fact]
    public void Registry_mode_binds_the_registry_settings_and_engine_mode_has_none()
    {
        var o = Bind("--registry", "reg.example/app:1", "--onto", "reg.example/base:2", "--from", "reg.example/base:1", "-t", "reg.example/app:1-p",
            "--creds", "u:p", "--insecure-registry", "reg.example", "--platform", "linux/arm64");
        o.Registry.ShouldNotBeNull();
        o.Registry.Creds.ShouldBe("u:p");
        o.Registry.Insecure.ShouldBe(["reg.example"]);
        o.Registry.Platform.ShouldBe("linux/arm64");
        o.Registry.CacheDir.ShouldBe("/home/me/.cache/layertool/registry");
        o.CacheDir.ShouldBe("/home/me/.cache/layertool/index");
        o.Tags.ShouldBe(["reg.example/app:1-p"]);

        var engine = Bind("app:1", "--onto", "base:2", "--no-fast-path");
        engine.Registry.ShouldBeNull();
        engine.NoFastPath.ShouldBeTrue();
    }

    [Theory]
    [InlineData("--registry", "a", "--onto", "b", "--input", "x.tar", "--output", "y.tar")]
    [InlineData("--registry", "a", "--onto", "b", "--output", "y.tar")]
    [InlineData("a", "--onto", "b", "--creds", "u:p")]
    [InlineData("a", "--onto", "b", "--insecure-registry", "h")]
    public void Registry_flags_that_do_not_fit_are_usage_errors(params string[] args) =>
        Command().Parse(args).Errors.ShouldNotBeEmpty();
}
