using LayerTool.Image.Squash;
using System.CommandLine;
using LayerTool.Cli.Commands;
using LayerTool.Registry;

namespace LayerTool.Cli.Tests;

/// <summary>The registry flags of squash and build: what they bind to and what is refused at parse time.</summary>
public class RegistryFlagsParsingTests
{
    private static (ParseResult Result, Command Command, CliHarness Harness) Parse(params string[] args)
    {
        var harness = new CliHarness();
        harness.Environment["HOME"] = "/home/u";
        var root = LayerToolApp.CreateRootCommand(harness.Context, n => harness.Environment.TryGetValue(n, out var v) ? v : null);
        var result = root.Parse(args);
        return (result, result.CommandResult.Command, harness);
    }

    [Fact]
    public void Squash_from_a_registry_to_a_registry_binds_without_IMAGE_or_an_output()
    {
        var (result, command, _) = Parse("squash", "--input", "registry://localhost:5000/app:1", "--onto", "localhost:5000/base:1",
            "--push", "localhost:5000/app:flat", "--push", "localhost:5000/app:2", "--creds", "u:p", "--jobs", "3", "--insecure-registry", "reg.lan:5000");
        result.Errors.ShouldBeEmpty();
        var options = ((SquashCommand)command).Bind(result);
        options.Image.ShouldBeNull();
        options.Input.ShouldBe("registry://localhost:5000/app:1");
        options.Onto.ShouldBe("localhost:5000/base:1");
        options.Push.ShouldBe(["localhost:5000/app:flat", "localhost:5000/app:2"]);
        options.NoLoad.ShouldBeTrue();
        options.Registry.ShouldNotBeNull();
        options.Registry.Creds.ShouldBe("u:p");
        options.Registry.Jobs.ShouldBe(3);
        options.Registry.Insecure.ShouldBe(["reg.lan:5000"]);
        options.Registry.CacheDir.ShouldBe("/home/u/.cache/layertool/registry");
        options.Registry.Progress.ShouldBe("none", "blob progress shows on a terminal only");
    }

    [Fact]
    public void Squash_sources_follow_the_input_the_base_input_and_onto()
    {
        var context = new CliHarness().Context;
        SquashOptions Options(string? image, string? onto, string input, string? baseInput) =>
            new(image, onto, [], null, "/o.tar", "docker", true, input, baseInput, null, false, "/c", Push: [], Registry: null);

        // A registry input: --onto is a registry reference.
        var r = SquashCommand.Request(Options(null, "localhost:5000/base:1", "registry://localhost:5000/app:1", null), [], context);
        r.Image.ShouldBe(new RegistrySquashSource(LayerTool.Image.ImageReference.Parse("localhost:5000/app:1")));
        r.Base.ShouldBe(new RegistrySquashSource(LayerTool.Image.ImageReference.Parse("localhost:5000/base:1")));

        // An archive input with a registry:// base.
        r = SquashCommand.Request(Options("app", null, "/in.tar", "registry://localhost:5000/base:1"), [], context);
        r.Image.ShouldBe(new ArchiveSquashSource("/in.tar", "app"));
        r.Base.ShouldBe(new RegistrySquashSource(LayerTool.Image.ImageReference.Parse("localhost:5000/base:1")));

        // An archive input with --onto registry://.
        r = SquashCommand.Request(Options("app", "registry://localhost:5000/base:1", "/in.tar", null), [], context);
        r.Base.ShouldBe(new RegistrySquashSource(LayerTool.Image.ImageReference.Parse("localhost:5000/base:1")));

        // A registry input with the base from an archive, and scratch.
        r = SquashCommand.Request(Options(null, "debian:bookworm", "registry://localhost:5000/app:1", "/base.tar"), [], context);
        r.Base.ShouldBe(new ArchiveSquashSource("/base.tar", "debian:bookworm"));
        SquashCommand.Request(Options(null, null, "registry://localhost:5000/app:1", null), [], context).Base.ShouldBeNull();
    }

    [Theory]
    [InlineData("IMAGE is required", "squash", "--onto", "scratch")]
    [InlineData("names the image: leave IMAGE out", "squash", "app", "--input", "registry://localhost:5000/app:1", "--onto", "scratch", "--push", "localhost:5000/x:1")]
    [InlineData("names the base: leave --onto out", "squash", "--input", "registry://localhost:5000/app:1", "--base-input", "registry://localhost:5000/b:1", "--onto", "b", "-o", "x.tar")]
    [InlineData("--onto is required", "squash", "--input", "registry://localhost:5000/app:1", "-o", "x.tar")]
    [InlineData("--input needs --output or --push", "squash", "--input", "registry://localhost:5000/app:1", "--onto", "scratch")]
    [InlineData("read without an engine", "squash", "app", "--onto", "registry://localhost:5000/b:1")]
    [InlineData("--no-load needs --output", "squash", "app", "--onto", "scratch", "--no-load", "--push", "localhost:5000/x:1")]
    public void Squash_refuses_contradictions_at_parse_time(string message, params string[] args)
    {
        var (result, _, _) = Parse(args);
        result.Errors.ShouldContain(e => e.Message.Contains(message, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_bad_push_reference_is_an_error_before_anything_runs()
    {
        var harness = new CliHarness();
        var code = await harness.RunAsync("squash", "--input", "/nonexistent.tar", "--onto", "scratch", "--push", "Bad Ref");
        code.ShouldBe(1);
        harness.Error.ToString().ShouldStartWith("layertool: ");
    }

    [Fact]
    public void Build_push_binds_its_references_and_registry_settings()
    {
        var (result, command, _) = Parse("build", ".", "--push", "localhost:5000/app:1", "--creds", "u:p", "--insecure-registry", "reg.lan");
        result.Errors.ShouldBeEmpty();
        var push = ((BuildCommand)command).BindPush(result);
        push.ShouldNotBeNull();
        push.References.ShouldBe(["localhost:5000/app:1"]);
        push.Registry.Creds.ShouldBe("u:p");
        push.Registry.Insecure.ShouldBe(["reg.lan"]);
        var (plain, plainCommand, _) = Parse("build", ".");
        ((BuildCommand)plainCommand).BindPush(plain).ShouldBeNull();
    }
}
