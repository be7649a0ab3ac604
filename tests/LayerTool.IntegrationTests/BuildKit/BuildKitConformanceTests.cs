using LayerTool.Build.Planning;
using LayerTool.Build.Progress;
using LayerTool.Build.BuildKit;
using LayerTool.Docker.BuildKit;
using LayerTool.IntegrationTests.Build;

namespace LayerTool.IntegrationTests.BuildKit;

/// <summary>
/// The conformance Dockerfiles (Build/Conformance; none has TAG or COMPRESS) built by LayerTool's BuildKit
/// backend and by <c>DOCKER_BUILDKIT=1 /usr/bin/docker build</c> (Debian's 20.10 client, the engine's own
/// BuildKit through a session) on the same engine: same config (the fields the classic suite compares), same
/// number of layers, same filesystem entry by entry. A case docker's BuildKit refuses (some classic
/// <c>expect-error</c> cases build on BuildKit; <c>volume-then-run</c> fails there, as VOLUME creates no
/// directory) must fail with LayerTool too. Layer digests are not compared: the context tar carries whole-second
/// mtimes (GNU format, see ContextSpool), docker's session nanoseconds, and layers keep them.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class BuildKitConformanceTests(EngineFixture engine)
{
    /// <summary>Debian's docker.io client: its <c>DOCKER_BUILDKIT=1 docker build</c> drives the embedded BuildKit without buildx.</summary>
    public const string ReferenceClient = "/usr/bin/docker";

    public static TheoryData<string> Cases() => ConformanceTests.Cases();

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Builds_the_same_image_as_docker_buildkit(string name)
    {
        var dir = Path.Combine(ConformanceTests.CasesDirectory, name);
        var flags = File.Exists(Path.Combine(dir, "flags")) ? File.ReadAllLines(Path.Combine(dir, "flags")).Where(l => l.Length > 0).ToList() : [];
        var suffix = Guid.NewGuid().ToString("N")[..8];
        var dockerTag = $"layertool-bk-conformance/docker:{name}-{suffix}";
        var oursTag = $"layertool-bk-conformance/ours:{name}-{suffix}";
        var env = new Dictionary<string, string> { ["DOCKER_HOST"] = engine.DockerHost, ["DOCKER_BUILDKIT"] = "1" };
        try
        {
            var docker = await EngineFixture.RunAsync(ReferenceClient, ["build", "-q", "--network", "none", "--label", EngineFixture.TestLabel + "=1", "-t", dockerTag, .. flags, dir],
                dir, CancellationToken.None, null, env);
            var buildArgs = flags.Where(f => f.StartsWith("--build-arg=", StringComparison.Ordinal)).Select(f => f["--build-arg=".Length..].Split('=', 2))
                .ToDictionary(p => p[0], p => p[1]);
            var target = flags.FirstOrDefault(f => f.StartsWith("--target=", StringComparison.Ordinal))?["--target=".Length..];
            using var backend = new BuildKitBackend(engine.Connection, new BuildKitBackendOptions(dir), new QuietProgress());
            var build = new StandardBuild(0, name, await File.ReadAllTextAsync(Path.Combine(dir, "Dockerfile")), target, buildArgs, [oursTag],
                new Dictionary<string, string> { [EngineFixture.TestLabel] = "1" }, "none", NoCache: false);
            if (docker.ExitCode != 0)
            {
                var failure = await Should.ThrowAsync<Exception>(() => backend.BuildAsync(build, CancellationToken.None));
                failure.ShouldBeOfType<LayerTool.Build.BuildException>(failure.Message);
                return;
            }
            if (BuildKitBackend.CopiesContextRoot(build.Dockerfile) && BuildKitBackend.TravelsPrivately(new BuildKitBackendOptions(dir), rewritten: false))
            {
                // Without a session the Dockerfile would travel in the context and be copied with it: refused (the CLI
                // takes the classic executor under auto, whose conformance suite has the same case).
                var refusal = await Should.ThrowAsync<LayerTool.Build.BuildException>(() => backend.BuildAsync(build, CancellationToken.None));
                refusal.Message.ShouldContain("--builder classic builds it exactly");
                return;
            }
            var result = await backend.BuildAsync(build, CancellationToken.None);
            result.ImageId.ShouldStartWith("sha256:");

            var expected = await ImageSnapshot.TakeAsync(engine, dockerTag);
            var actual = await ImageSnapshot.TakeAsync(engine, oursTag);
            foreach (var field in ImageSnapshot.ConfigFields)
                actual.Config[field].ShouldBe(expected.Config[field], $"config field {field} differs");
            actual.LayerCount.ShouldBe(expected.LayerCount, "the images have different numbers of layers");
            var missing = expected.Files.Except(actual.Files).ToList();
            var extra = actual.Files.Except(expected.Files).ToList();
            (missing.Count + extra.Count).ShouldBe(0,
                $"filesystems differ:\n only docker: {string.Join("\n   ", missing.Take(20))}\n only ours: {string.Join("\n   ", extra.Take(20))}");
        }
        finally
        {
            await EngineFixture.RunAsync("docker", ["rmi", "-f", dockerTag, oursTag], dir, CancellationToken.None, null,
                new Dictionary<string, string> { ["DOCKER_HOST"] = engine.DockerHost });
        }
    }
}
