using System.CommandLine;
using LayerTool.Cli.Commands;

namespace LayerTool.Cli.Tests;

/// <summary>Arguments become the right options record, without running anything.</summary>
public class CommandParsingTests
{
    private static (ParseResult Result, Command Command) Parse(params string[] args)
    {
        var harness = new CliHarness();
        var env = new Dictionary<string, string> { ["FROM_ENV"] = "env-value" };
        var root = LayerToolApp.CreateRootCommand(harness.Context, n => env.TryGetValue(n, out var v) ? v : null);
        var result = root.Parse(args);
        return (result, result.CommandResult.Command);
    }

    [Fact]
    public void Parse_defaults_to_Dockerfile_and_text()
    {
        var (result, command) = Parse("parse");
        result.Errors.ShouldBeEmpty();
        ((ParseCommand)command).Bind(result).ShouldBe(new ParseOptions("Dockerfile", false));
    }

    [Theory]
    [InlineData("-f", "x/Dockerfile.dev")]
    [InlineData("--file", "x/Dockerfile.dev")]
    [InlineData("-f", "-")]
    public void Parse_takes_a_file_and_json(string flag, string file)
    {
        var (result, command) = Parse("parse", flag, file, "--json");
        result.Errors.ShouldBeEmpty();
        ((ParseCommand)command).Bind(result).ShouldBe(new ParseOptions(file, true));
    }

    [Fact]
    public void Lint_collects_build_args_in_order()
    {
        var (result, command) = Parse("lint", "-f", "df", "--build-arg", "A=1", "--build-arg", "B=", "--build-arg", "C=x=y",
            "--build-arg", "FROM_ENV", "--build-arg", "NOT_IN_ENV");
        result.Errors.ShouldBeEmpty();
        var options = ((LintCommand)command).Bind(result);
        options.File.ShouldBe("df");
        options.BuildArgs.ShouldBe(
        [
            KeyValuePair.Create("A", "1"),
            KeyValuePair.Create("B", string.Empty),
            KeyValuePair.Create("C", "x=y"),
            KeyValuePair.Create("FROM_ENV", "env-value"),
        ]);
    }

    [Fact]
    public void Lint_defaults()
    {
        var (result, command) = Parse("lint");
        ((LintCommand)command).Bind(result).ShouldBe(new LintOptions("Dockerfile", []));
    }

    [Theory]
    [InlineData("parse", "--bogus")]
    [InlineData("lint", "--build-arg", "=x")]
    [InlineData("frobnicate")]
    [InlineData("parse", "-f")]
    [InlineData("lint", "--build-arg")]
    [InlineData("lint", "--build-arg", "A=1", "B=2")]
    public void Usage_errors_are_parse_errors(params string[] args)
    {
        var (result, _) = Parse(args);
        result.Errors.ShouldNotBeEmpty();
    }
}
