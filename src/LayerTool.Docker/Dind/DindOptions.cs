namespace LayerTool.Docker.Dind;

/// <summary>How to start a Docker-in-Docker build container.</summary>
/// <param name="Image">The dind image (built from Dockerfile.dind: wrapdocker.sh as its entrypoint).</param>
/// <param name="Labels">Extra labels on the container and its volume (tests add <c>layertool.test=1</c>);
/// <c>layertool.dind=&lt;id&gt;</c> is always set.</param>
/// <param name="StartTimeout">How long the inner daemon may take to answer.</param>
/// <param name="Isolation">Which privileges to ask for; <see cref="DindIsolation.Auto"/> tries
/// <c>--privileged</c> and falls back to the explicit set when the host refuses it.</param>
/// <param name="SocketDirectory">Host directory (bind-mounted into the container) where the inner
/// daemon's socket appears; null = a new directory under the temp folder, removed afterwards.</param>
/// <param name="DaemonArguments">Extra dockerd flags for the inner daemon.</param>
/// <param name="BuildIfMissing">How to build <paramref name="Image"/> when the engine does not have it (its
/// Tag is replaced by <paramref name="Image"/>), as docker pulls a missing image; null = fail and say how to
/// build it.</param>
public sealed record DindOptions(
    string Image,
    IReadOnlyDictionary<string, string>? Labels = null,
    TimeSpan? StartTimeout = null,
    DindIsolation Isolation = DindIsolation.Auto,
    string? SocketDirectory = null,
    IReadOnlyList<string>? DaemonArguments = null,
    DindImageOptions? BuildIfMissing = null)
{
    /// <summary>The image users get when they name none.</summary>
    public const string DefaultImage = "layertool-dind:latest";

    public TimeSpan EffectiveStartTimeout => StartTimeout ?? TimeSpan.FromSeconds(60);
}

/// <summary>The privileges a dind container runs with.</summary>
public enum DindIsolation
{
    /// <summary><see cref="Privileged"/> first; <see cref="ExplicitCapabilities"/> when the host refuses it.</summary>
    Auto,

    /// <summary><c>docker run --privileged</c>.</summary>
    Privileged,

    /// <summary>
    /// Every capability but CAP_SYS_RESOURCE, no seccomp/AppArmor profile, unmasked /proc and /sys, all
    /// devices, and (cgroup v1) the host's cgroup namespace with /sys/fs/cgroup mounted read-write: for
    /// hosts whose capability bounding set lacks CAP_SYS_RESOURCE, where runc cannot apply the full set
    /// that --privileged asks for ("unable to apply caps: operation not permitted").
    /// </summary>
    ExplicitCapabilities,
}
