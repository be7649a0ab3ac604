namespace LayerTool.Cli.Tests;

/// <summary>The CLI run in-process: exit codes, stdout and stderr.</summary>
public class EndToEndTests
{
    [Fact]
    public async Task Seed_example_parses_and_lints_clean()
    {
        var parse = new CliHarness();
        (await parse.RunAsync("parse", "-f", "examples/seed/Dockerfile")).ShouldBe(0);
        parse.Error.ToString().ShouldBeEmpty();
        parse.Out.ToString().ShouldContain("TAG shell [\"sshd:latest\"]");
        parse.Out.ToString().ShouldContain("COMPRESS shell [\"centos:centos6\"]");

        var lint = new CliHarness();
        (await lint.RunAsync("lint", "-f", "examples/seed/Dockerfile")).ShouldBe(0);
        lint.Out.ToString().ShouldBeEmpty();
        lint.Error.ToString().ShouldBeEmpty();
    }

    [Theory]
    [InlineData("unterminated-heredoc", "2:1: error: unterminated heredoc")]
    [InlineData("bad-stage-name", "1:17: error: invalid name for build stage: \"1st-stage\"")]
    [InlineData("tag-before-from", "1:1: error: TAG is not allowed before the first FROM")]
    [InlineData("compress-two-args", "3:18: error: COMPRESS takes at most one argument")]
    [InlineData("unknown-flag", "2:6: error: unknown flag: form")]
    [InlineData("empty-env", "2:1: error: ENV requires at least one argument")]
    public async Task Malformed_examples_fail_lint_with_a_location(string name, string expected)
    {
        var file = $"examples/malformed/{name}.Dockerfile";
        var h = new CliHarness();
        (await h.RunAsync("lint", "-f", file)).ShouldBe(1);
        h.Out.ToString().ShouldContain($"{file}:{expected}");
        h.Error.ToString().ShouldNotContain("   at ");
    }

    [Theory]
    [InlineData("unterminated-heredoc", "2:1: unterminated heredoc")]
    [InlineData("bad-stage-name", "1:17: invalid name for build stage")]
    [InlineData("tag-before-from", "1:1: TAG is not allowed before the first FROM")]
    [InlineData("compress-two-args", "3:18: COMPRESS takes at most one argument")]
    [InlineData("unknown-flag", "2:6: unknown flag: form")]
    [InlineData("empty-env", "2:1: ENV requires at least one argument")]
    public async Task Malformed_examples_fail_parse_with_one_line_on_stderr(string name, string expected)
    {
        var file = $"examples/malformed/{name}.Dockerfile";
        var h = new CliHarness();
        (await h.RunAsync("parse", "-f", file)).ShouldBe(1);
        var stderr = h.Error.ToString();
        stderr.ShouldStartWith($"layertool: {file}:{expected}");
        stderr.TrimEnd('\n').ShouldNotContain('\n');
        h.Out.ToString().ShouldBeEmpty();
    }

    [Fact]
    public async Task All_errors_are_reported_at_once()
    {
        var h = new CliHarness();
        (await h.RunAsync("lint", "-f", "examples/malformed/all-at-once.Dockerfile")).ShouldBe(1);
        h.Out.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Length.ShouldBe(6);
    }

    [Fact]
    public async Task Stdin_is_read_with_dash()
    {
        var h = new CliHarness { Stdin = "FROM busybox\nENV\n" };
        (await h.RunAsync("lint", "-f", "-")).ShouldBe(1);
        h.Out.ToString().ShouldBe("<stdin>:2:1: error: ENV requires at least one argument\n");
    }

    [Fact]
    public async Task Build_args_reach_the_linter()
    {
        var h = new CliHarness { Stdin = "ARG V\nFROM busybox:${V:?}\n" };
        (await h.RunAsync("lint", "-f", "-", "--build-arg", "V=1.36", "--build-arg", "EXTRA=1")).ShouldBe(0);
        h.Out.ToString().ShouldBe("<stdin>:1:1: warning: build argument \"EXTRA\" is not consumed by any ARG instruction\n");

        var unset = new CliHarness { Stdin = "ARG V\nFROM busybox:${V:?}\n" };
        (await unset.RunAsync("lint", "-f", "-")).ShouldBe(1);
        unset.Out.ToString().ShouldContain("V: is not allowed to be unset");
    }

    [Fact]
    public async Task Json_output_is_json()
    {
        var h = new CliHarness();
        (await h.RunAsync("parse", "--json", "-f", "examples/seed/Dockerfile")).ShouldBe(0);
        using var doc = System.Text.Json.JsonDocument.Parse(h.Out.ToString());
        var stage = doc.RootElement.GetProperty("stages")[0];
        stage.GetProperty("base").GetString().ShouldBe("centos:centos6");
        stage.GetProperty("instructions").GetArrayLength().ShouldBe(5);
    }

    [Fact]
    public async Task Missing_file_is_a_user_error()
    {
        var h = new CliHarness();
        (await h.RunAsync("lint", "-f", "does/not/exist")).ShouldBe(1);
        h.Error.ToString().ShouldBe("layertool: cannot read does/not/exist: no such file\n");
    }

    [Fact]
    public async Task Usage_error_exits_2()
    {
        var h = new CliHarness();
        (await h.RunAsync("parse", "--bogus")).ShouldBe(2);
        h.Error.ToString().ShouldStartWith("layertool: ");
    }

    [Fact]
    public async Task Version_prints_the_version()
    {
        var h = new CliHarness();
        (await h.RunAsync("--version")).ShouldBe(0);
        h.Out.ToString().Trim().ShouldBe("0.1.0");
    }

    [Theory]
    [InlineData("--help")]
    [InlineData("parse", "--help")]
    [InlineData("lint", "-h")]
    public async Task Help_is_everywhere(params string[] args)
    {
        var h = new CliHarness();
        (await h.RunAsync(args)).ShouldBe(0);
        h.Out.ToString().ShouldContain("Usage:");
    }

    [Fact]
    public async Task Cancellation_exits_130()
    {
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        var h = new CliHarness();
        (await h.RunAsync(cts.Token, "lint", "-f", "examples/seed/Dockerfile")).ShouldBe(130);
        h.Error.ToString().ShouldBe("layertool: cancelled\n");
    }
}
