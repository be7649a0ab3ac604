using LayerTool.Cli;
using LayerTool.Docker.Dind;

namespace LayerTool.IntegrationTests.Dind;

/// <summary><c>layertool build --dind</c> with a dind image the engine has never seen: it is built on first use.</summary>
[Collection(DindCollection.Name)]
public sealed class DindAutoBuildTests(DindFixture dind) : IDisposable
{
    private readonly string _context = Directory.CreateTempSubdirectory("dind-autobuild-").FullName;
    private readonly string _suffix = Guid.NewGuid().ToString("N")[..12];

    public void Dispose() => Directory.Delete(_context, recursive: true);

    [Fact]
    public async Task A_missing_dind_image_is_built_on_first_use_with_progress_and_a_line_saying_so()
    {
        // A tag no run has made: the engine has no such image (the fixture's image stays as it is).
        var image = $"layertool-test-dind-autobuild:{_suffix}";
        var final = $"layertool-test-dind-autobuilt:{_suffix}";
        (await dind.DockerAsync(["image", "inspect", image])).ExitCode.ShouldNotBe(0);
        await File.WriteAllTextAsync(Path.Combine(_context, "Dockerfile"), "FROM busybox:latest\nRUN echo built inside > /inside\n");
        try
        {
            using var output = new StringWriter();
            using var error = new StringWriter();
            // The working directory is outside the repository: the image is built from the repository above
            // this program's own directory (the test's build output), as a layertool run from its build output does.
            var code = await LayerToolApp.RunAsync(["build", "--dind", "--dind-image", image, "-t", final, _context],
                new CliContext(output, error, () => TextReader.Null, _context), CancellationToken.None);
            var stderr = error.ToString();
            code.ShouldBe(0, output + stderr);
            stderr.ShouldContain($"dind: {image} is not in the engine; building it now from {EngineFixture.RepoRoot}");
            stderr.ShouldContain("publishing layertool");
            stderr.ShouldContain($"dind: built {image}");
            stderr.ShouldContain("dind: brought back");
            (await dind.DockerAsync(["image", "inspect", "--format", "{{index .Config.Labels \"" + DindImageBuilder.InputsLabel + "\"}}", image])).StdOut.Trim().ShouldNotBeEmpty();
            var run = await dind.DockerAsync(["run", "--rm", "--network", "none", "--label", $"{EngineFixture.TestLabel}=1", final, "cat", "/inside"]);
            run.StdOut.ShouldBe("built inside\n");

            // The second use finds it: no build.
            using var again = new StringWriter();
            (await LayerToolApp.RunAsync(["build", "--dind", "--dind-image", image, "-t", final, _context],
                new CliContext(new StringWriter(), again, () => TextReader.Null, _context), CancellationToken.None)).ShouldBe(0, again.ToString());
            again.ToString().ShouldNotContain("building it now");
        }
        finally
        {
            await dind.DockerAsync(["rmi", "-f", final, image]);
        }
    }
}
