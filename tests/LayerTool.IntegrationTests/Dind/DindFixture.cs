using LayerTool.Docker;
using LayerTool.Docker.Dind;

namespace LayerTool.IntegrationTests.Dind;

/// <summary>
/// The engine plus the dind image, built once per test run from this checkout (publish + docker build,
/// about two minutes) and reused while its inputs hash (Dockerfile.dind, wrapdocker.sh, src/, the base
/// image) is unchanged.
/// </summary>
public sealed class DindFixture : IAsyncLifetime
{
    public const string Image = "layertool-dind:test";

    /// <summary>The explicit privilege set of REFERENCE.md, for hosts that refuse --privileged.</summary>
    private static readonly string[] ExplicitFlags =
    [
        "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
        "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined", "--security-opt", "systempaths=unconfined",
        "--device-cgroup-rule", "a *:* rwm", "--cgroupns", "host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    ];

    public EngineFixture Engine { get; } = new();

    public DindImageResult Built { get; private set; } = null!;

    /// <summary><c>docker run</c> flags that let a dind container work on this host (privileged where the
    /// host allows it), plus the host network and the test label.</summary>
    public IReadOnlyList<string> RunFlags { get; private set; } = [];

    public DockerConnection Connection => Engine.Connection;

    public async Task InitializeAsync()
    {
        await Engine.InitializeAsync().ConfigureAwait(false);
        Built = await DindImageBuilder.BuildAsync(Engine.Connection,
            new DindImageOptions(EngineFixture.RepoRoot, Image, ReuseIfUpToDate: true,
                Labels: new Dictionary<string, string> { [EngineFixture.TestLabel] = "1" }),
            null, CancellationToken.None).ConfigureAwait(false);

        var privileged = await EngineFixture.RunAsync("docker", ["run", "--rm", "--network", "none", "--label", $"{EngineFixture.TestLabel}=1", "--privileged", "busybox:latest", "true"],
            EngineFixture.RepoRoot, CancellationToken.None, environment: Env).ConfigureAwait(false);
        var isolation = privileged.ExitCode == 0 ? ["--privileged"] : ExplicitFlags;
        RunFlags = [.. isolation, "--network", "host", "--label", $"{EngineFixture.TestLabel}=1"];
    }

    public Dictionary<string, string> Env => new() { ["DOCKER_HOST"] = Engine.DockerHost };

    /// <summary>Runs the docker CLI against the outer engine and returns the whole result (no throw).</summary>
    public Task<EngineFixture.ProcessResult> DockerAsync(IEnumerable<string> args, string? stdin = null, CancellationToken cancellationToken = default) =>
        EngineFixture.RunAsync("docker", args, EngineFixture.RepoRoot, cancellationToken, stdin, Env);

    public Task DisposeAsync() => Engine.DisposeAsync();
}

[CollectionDefinition(Name)]
public sealed class DindCollection : ICollectionFixture<DindFixture>
{
    public const string Name = "dind";
}
