using System.Text.Json;
using LayerTool.Cli;
using LayerTool.Build.Dind;
using LayerTool.Docker.Dind;

namespace LayerTool.IntegrationTests.Dind;

/// <summary><c>layertool build --dind</c>, and <c>layertool build</c> inside the dind container (a CI job).</summary>
[Collection(DindCollection.Name)]
public sealed class DindBuildTests(DindFixture dind) : IDisposable
{
    private readonly string _context = Directory.CreateTempSubdirectory("dind-build-").FullName;
    private readonly string _suffix = Guid.NewGuid().ToString("N")[..12];

    public void Dispose() => Directory.Delete(_context, recursive: true);

    private async Task<(int Code, string Out, string Err)> LayerToolAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await LayerToolApp.RunAsync(args, new CliContext(output, error, () => TextReader.Null, _context), CancellationToken.None);
        return (code, output.ToString(), error.ToString());
    }

    private async Task<string[]> LayersAsync(string image)
    {
        var json = (await dind.DockerAsync(["image", "inspect", "--format", "{{json .RootFS.Layers}}", image])).StdOut;
        return JsonSerializer.Deserialize<string[]>(json)!;
    }

    [Fact]
    public async Task Build_with_dind_runs_RUN_TAG_COMPRESS_and_brings_back_the_images_and_leaves_nothing()
    {
        var final = $"layertool-test-dind-final:{_suffix}";
        var mid = $"layertool-test-dind-mid:{_suffix}";
        await File.WriteAllTextAsync(Path.Combine(_context, "Dockerfile"),
            $"FROM busybox:latest\nRUN echo one > /one\nTAG {mid}\nRUN echo two > /two && rm /one\nRUN echo three > /three\nCOMPRESS\n");
        try
        {
            var (code, stdout, stderr) = await LayerToolAsync("build", "--dind", "--dind-image", DindFixture.Image, "-t", final, _context);
            code.ShouldBe(0, stdout + stderr);
            stderr.ShouldContain("dind: gave the build busybox:latest");
            stderr.ShouldContain("dind: brought back");

            stdout.ShouldContain("COMPRESS (line 6)");

            // TAG: the image after step 2, as the inner engine made it. COMPRESS: one layer on the base.
            var baseLayers = await LayersAsync("busybox:latest");
            var midLayers = await LayersAsync(mid);
            var finalLayers = await LayersAsync(final);
            midLayers.Length.ShouldBe(baseLayers.Length + 1);
            midLayers.Take(baseLayers.Length).ShouldBe(baseLayers);
            finalLayers.Length.ShouldBe(baseLayers.Length + 1);
            finalLayers.Take(baseLayers.Length).ShouldBe(baseLayers);
            var tagLine = stdout.Split('\n').Single(l => l.StartsWith($"TAG {mid} -> ", StringComparison.Ordinal));
            var midId = (await dind.DockerAsync(["image", "inspect", "--format", "{{.Id}}", mid])).StdOut.Trim();
            midId.ShouldStartWith("sha256:" + tagLine.Split("-> ")[1][..12]);

            var files = await dind.DockerAsync(["run", "--rm", "--network", "none", "--label", "layertool.test=1", final, "sh", "-c", "cat /two /three; ls /one 2>&1 || true"]);
            files.StdOut.ShouldContain("two\nthree");
            files.StdOut.ShouldContain("No such file");
            await AssertNoDindLeftAsync();
        }
        finally
        {
            await dind.DockerAsync(["rmi", final, mid]);
        }
    }

    [Fact]
    public async Task A_failing_build_in_dind_brings_nothing_back_and_leaves_nothing()
    {
        var final = $"layertool-test-dind-failed:{_suffix}";
        await File.WriteAllTextAsync(Path.Combine(_context, "Dockerfile"), "FROM busybox:latest\nRUN echo doomed && exit 5\n");
        var (code, stdout, stderr) = await LayerToolAsync("build", "--dind", "--dind-image", DindFixture.Image, "-t", final, _context);
        code.ShouldBe(1, stdout + stderr);
        (await dind.DockerAsync(["image", "inspect", final])).ExitCode.ShouldNotBe(0);
        await AssertNoDindLeftAsync();
    }

    [Fact]
    public async Task Layertool_builds_inside_the_dind_container_like_a_CI_job()
    {
        (await dind.DockerAsync(["save", "-o", Path.Combine(_context, "busybox.tar"), "busybox:latest"])).ExitCode.ShouldBe(0);
        await File.WriteAllTextAsync(Path.Combine(_context, "Dockerfile"),
            "FROM busybox:latest\nRUN echo one > /one\nTAG ci:mid\nRUN echo two > /two\nCOMPRESS\n");
        await File.WriteAllTextAsync(Path.Combine(_context, ".dockerignore"), "busybox.tar\n");
        var volume = $"layertool-test-ci-{_suffix}";
        try
        {
            var result = await dind.DockerAsync(["run", "--rm", .. dind.RunFlags, "-v", $"{volume}:/var/lib/docker", "-v", $"{_context}:/src:ro", "-w", "/src",
                DindFixture.Image, "sh", "-c",
                "docker load -q -i busybox.tar && layertool build --network host -t ci:final . && docker image inspect --format '{{len .RootFS.Layers}}' ci:mid ci:final && docker run --rm --network none ci:final cat /one /two"]);
            result.ExitCode.ShouldBe(0, result.StdOut + result.StdErr);
            // The inner engine (Docker 20.10) has BuildKit: under auto the planner compiles TAG and COMPRESS onto it.
            result.StdOut.ShouldContain("TAG ci:mid (Dockerfile:3)");
            result.StdOut.ShouldContain("COMPRESS (line 5)");
            var lines = result.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            var baseLayers = (await LayersAsync("busybox:latest")).Length;
            lines.ShouldContain((baseLayers + 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
            // ci:mid has one layer over the base, and so has ci:final after COMPRESS
            lines.Count(l => l == (baseLayers + 1).ToString(System.Globalization.CultureInfo.InvariantCulture)).ShouldBe(2);
            lines[^2].ShouldBe("one");
            lines[^1].ShouldBe("two");
        }
        finally
        {
            await dind.DockerAsync(["volume", "rm", "-f", volume]);
        }
    }

    private async Task AssertNoDindLeftAsync()
    {
        // The dind tests run one at a time (one collection): any dind container or volume is a leak.
        (await dind.DockerAsync(["ps", "-aq", "--filter", $"label={DindSession.Label}"])).StdOut.Trim().ShouldBeEmpty();
        (await dind.DockerAsync(["volume", "ls", "-q", "--filter", $"label={DindSession.Label}"])).StdOut.Trim().ShouldBeEmpty();
    }
}
