using Docker.DotNet.Models;
using LayerTool.Image;
using ContainerConfig = LayerTool.Image.ContainerConfig;

namespace LayerTool.Docker.Images;

/// <summary>
/// The one mapping between Docker.DotNet's container config and <see cref="ContainerConfig"/>: what the engine's inspect
/// answers is read with absent kept apart from empty where the image config keeps them apart; what is sent to create a
/// container or commit one is sent whole (absent strings, lists and maps as empty ones), as the commit endpoint merges
/// what it is not given with the container's own config.
/// </summary>
internal static class DockerConfigs
{
    public static ContainerConfig FromDocker(DockerOCIImageConfig? c) => c is null ? new ContainerConfig() : new ContainerConfig
    {
        User = string.IsNullOrEmpty(c.User) ? null : c.User,
        Env = c.Env?.ToList(),
        Cmd = c.Cmd?.ToList(),
        Entrypoint = c.Entrypoint?.ToList(),
        WorkingDir = string.IsNullOrEmpty(c.WorkingDir) ? null : c.WorkingDir,
        Labels = c.Labels is null ? null : new Dictionary<string, string>(c.Labels, StringComparer.Ordinal),
        ExposedPorts = c.ExposedPorts?.Keys.Order(StringComparer.Ordinal).ToList(),
        Volumes = c.Volumes?.Keys.Order(StringComparer.Ordinal).ToList(),
        StopSignal = string.IsNullOrEmpty(c.StopSignal) ? null : c.StopSignal,
        Healthcheck = c.Healthcheck is null ? null : new HealthConfig
        {
            Test = c.Healthcheck.Test?.ToList(),
            Interval = c.Healthcheck.Interval,
            Timeout = c.Healthcheck.Timeout,
            StartPeriod = c.Healthcheck.StartPeriod,
            Retries = c.Healthcheck.Retries is { } r ? (int)r : null,
        },
        Shell = c.Shell?.ToList(),
        OnBuild = c.OnBuild?.ToList(),
        ArgsEscaped = c.ArgsEscaped,
    };

    public static IDictionary<string, EmptyStruct> Keys(IReadOnlyList<string>? keys) =>
        (keys ?? []).Distinct(StringComparer.Ordinal).ToDictionary(x => x, _ => default(EmptyStruct));

    public static IDictionary<string, string> Labels(IReadOnlyDictionary<string, string>? labels) =>
        labels is null ? new Dictionary<string, string>() : labels.ToDictionary();

    public static HealthcheckConfig? ToDocker(HealthConfig? h) => h is null ? null : new HealthcheckConfig
    {
        Test = h.Test?.ToList(),
        Interval = h.Interval ?? TimeSpan.Zero,
        Timeout = h.Timeout ?? TimeSpan.Zero,
        StartPeriod = h.StartPeriod ?? TimeSpan.Zero,
        Retries = h.Retries ?? 0,
    };
}
