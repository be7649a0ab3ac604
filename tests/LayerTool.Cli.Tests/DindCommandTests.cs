using LayerTool.Cli.Commands;
using LayerTool.Docker.Dind;

namespace LayerTool.Cli.Tests;

/// <summary><c>layertool dind ...</c>: arguments to options records, nothing run.</summary>
public sealed class DindCommandTests
{
    [Fact]
    public void Build_image_defaults_to_the_repository_found_upwards_and_the_default_tag()
    {
        var nested = Path.Combine(CliHarness.RepoRoot, "src", "LayerTool.Cli");
        var options = DindCommand.ParseBuildImage([], nested);
        options.RepositoryRoot.ShouldBe(CliHarness.RepoRoot);
        options.Tag.ShouldBe(DindOptions.DefaultImage);
        options.BaseImage.ShouldBeNull();
        options.LayerToolBinary.ShouldBeNull();
        options.ReuseIfUpToDate.ShouldBeFalse();
    }

    [Fact]
    public void Build_image_takes_base_tag_binary_and_if_changed()
    {
        var options = DindCommand.ParseBuildImage(["--base", "debian:trixie", "-t", "ci/dind:1", "--layertool", "/opt/layertool", "--if-changed",
            "--repo", CliHarness.RepoRoot], "/");
        options.BaseImage.ShouldBe("debian:trixie");
        options.Tag.ShouldBe("ci/dind:1");
        options.LayerToolBinary.ShouldBe("/opt/layertool");
        options.ReuseIfUpToDate.ShouldBeTrue();
    }

    [Fact]
    public void Build_image_outside_a_repository_is_a_clear_error()
    {
        var e = Should.Throw<CliException>(() => DindCommand.ParseBuildImage([], Path.GetTempPath()));
        e.Message.ShouldContain("Dockerfile.dind");
    }

    [Fact]
    public void Run_collects_images_isolation_and_the_command()
    {
        var (options, job) = DindCommand.ParseRun(["--dind-image", "x:1", "--provide", "busybox", "--provide", "debian:bookworm",
            "--bring-back", "out:1", "--isolation", "capabilities", "--start-timeout", "15", "--", "docker", "build", "-t", "out:1", "."]);
        options.Image.ShouldBe("x:1");
        options.Isolation.ShouldBe(DindIsolation.ExplicitCapabilities);
        options.EffectiveStartTimeout.ShouldBe(TimeSpan.FromSeconds(15));
        job.ProvideImages.ShouldBe(["busybox", "debian:bookworm"]);
        job.BringBackImages.ShouldBe(["out:1"]);
        job.Command.ShouldBe(["docker", "build", "-t", "out:1", "."]);
    }

    [Fact]
    public void Run_defaults_to_auto_isolation_and_the_default_image()
    {
        var (options, job) = DindCommand.ParseRun(["true"]);
        options.Image.ShouldBe(DindOptions.DefaultImage);
        options.Isolation.ShouldBe(DindIsolation.Auto);
        job.ProvideImages.ShouldBeEmpty();
    }

    [Fact]
    public async Task Run_without_a_command_is_a_usage_error()
    {
        var cli = new CliHarness();
        (await cli.RunAsync("dind", "run")).ShouldBe(2);
    }

    [Fact]
    public async Task An_unknown_isolation_is_a_usage_error()
    {
        var cli = new CliHarness();
        (await cli.RunAsync("dind", "run", "--isolation", "none", "true")).ShouldBe(2);
    }

    [Fact]
    public void Build_with_dind_can_build_its_image_from_the_repository_above_the_working_directory()
    {
        var options = DindCommand.WithImageSource(new DindOptions("my-dind:1"), Path.Combine(CliHarness.RepoRoot, "src"))!;
        options.BuildIfMissing.ShouldNotBeNull();
        options.BuildIfMissing.RepositoryRoot.ShouldBe(CliHarness.RepoRoot);
        options.BuildIfMissing.Tag.ShouldBe("my-dind:1");
        // Run by dotnet from the build output: the sources are published, not this process's binary.
        options.BuildIfMissing.LayerToolBinary.ShouldBeNull();
    }

    [Fact]
    public void A_direct_build_has_no_dind_options_to_complete()
    {
        DindCommand.WithImageSource(null, CliHarness.RepoRoot).ShouldBeNull();
    }
}
