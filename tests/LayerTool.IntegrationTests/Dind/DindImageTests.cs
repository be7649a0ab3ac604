using LayerTool.Docker.Dind;

namespace LayerTool.IntegrationTests.Dind;

[Collection(DindCollection.Name)]
public sealed class DindImageTests(DindFixture dind)
{
    [Fact]
    public async Task The_image_has_dockerd_containerd_runc_tini_and_layertool()
    {
        var result = await dind.DockerAsync(["run", "--rm", "--network", "none", "--label", "layertool.test=1", "--entrypoint", "sh", DindFixture.Image, "-c",
            "dockerd --version && containerd --version && runc --version && tini --version && layertool --help"]);
        result.ExitCode.ShouldBe(0, result.StdErr);
        result.StdOut.ShouldContain("Docker version 20.10");
        result.StdOut.ShouldContain("tini version");
        result.StdOut.ShouldContain("dind");
    }

    [Fact]
    public async Task The_entrypoint_is_tini_then_wrapdocker()
    {
        var result = await dind.DockerAsync(["image", "inspect", "--format", "{{json .Config.Entrypoint}} {{index .Config.Labels \"layertool.dind.inputs\"}}", DindFixture.Image]);
        result.StdOut.ShouldContain("\"/usr/bin/tini\",\"--\",\"/usr/local/bin/wrapdocker.sh\"");
        result.StdOut.ShouldContain(dind.Built.InputsHash);
    }

    [Fact]
    public async Task Building_again_from_the_same_inputs_reuses_the_image()
    {
        var again = await DindImageBuilder.BuildAsync(dind.Connection,
            new DindImageOptions(EngineFixture.RepoRoot, DindFixture.Image, ReuseIfUpToDate: true), null, CancellationToken.None);
        again.Reused.ShouldBeTrue();
        again.ImageId.ShouldBe(dind.Built.ImageId);
    }

    [Fact]
    public async Task The_inputs_hash_follows_the_entrypoint_script()
    {
        var root = Directory.CreateTempSubdirectory("dind-hash-").FullName;
        try
        {
            await File.WriteAllTextAsync(Path.Combine(root, "Dockerfile.dind"), "FROM x\n");
            await File.WriteAllTextAsync(Path.Combine(root, "wrapdocker.sh"), "#!/bin/sh\n");
            var binary = Path.Combine(root, "layertool");
            await File.WriteAllTextAsync(binary, "bin");
            var first = await DindImageBuilder.ComputeInputsHashAsync(root, binary, "base", CancellationToken.None);
            (await DindImageBuilder.ComputeInputsHashAsync(root, binary, "base", CancellationToken.None)).ShouldBe(first);
            await File.WriteAllTextAsync(Path.Combine(root, "wrapdocker.sh"), "#!/bin/sh\nexit 0\n");
            (await DindImageBuilder.ComputeInputsHashAsync(root, binary, "base", CancellationToken.None)).ShouldNotBe(first);
            (await DindImageBuilder.ComputeInputsHashAsync(root, binary, "other-base", CancellationToken.None)).ShouldNotBe(first);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
