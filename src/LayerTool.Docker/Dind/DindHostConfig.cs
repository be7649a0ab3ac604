using Docker.DotNet.Models;

namespace LayerTool.Docker.Dind;

/// <summary>The host configuration of a dind container for each <see cref="DindIsolation"/>.</summary>
internal static class DindHostConfig
{
    /// <summary>Where the inner daemon's data lives in the container: always a volume, never overlayfs.</summary>
    public const string DataRoot = "/var/lib/docker";

    /// <summary>Where the host's socket directory is mounted in the container.</summary>
    public const string SocketMount = "/run/layertool-dind";

    public static HostConfig Create(DindIsolation isolation, string volume, string socketDirectory, bool cgroupV2)
    {
        var binds = new List<string> { $"{volume}:{DataRoot}", $"{socketDirectory}:{SocketMount}" };
        var config = new HostConfig
        {
            // The inner daemon runs without a bridge; its containers use the host network (or none).
            NetworkMode = "host",
            Binds = binds,
            Init = false,
        };
        if (isolation == DindIsolation.Privileged)
        {
            config.Privileged = true;
            return config;
        }

        config.CapAdd = ["ALL"];
        config.CapDrop = ["SYS_RESOURCE"];
        // The CLI's "--security-opt systempaths=unconfined" is client-side sugar for empty masked and
        // read-only path lists; the API takes the lists.
        config.SecurityOpt = ["seccomp=unconfined", "apparmor=unconfined"];
        config.MaskedPaths = [];
        config.ReadonlyPaths = [];
        config.DeviceCgroupRules = ["a *:* rwm"];
        if (cgroupV2)
        {
            // A private namespace: wrapdocker.sh moves its processes into /init and delegates controllers.
            config.CgroupnsMode = "private";
        }
        else
        {
            config.CgroupnsMode = "host";
            binds.Add("/sys/fs/cgroup:/sys/fs/cgroup:rw");
        }
        return config;
    }
}
