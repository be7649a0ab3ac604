using System.Diagnostics;
using System.Globalization;
using Docker.DotNet;
using Docker.DotNet.Models;

namespace LayerTool.Docker.Dind;

/// <summary>
/// A running Docker-in-Docker build container and a connection to the daemon inside it.
/// <para>
/// The inner daemon listens on a unix socket in a host directory that is bind-mounted into the
/// container, so this process talks to it directly through the Engine API: the build executor runs
/// unchanged against <see cref="Inner"/>, and images move between the engines as one streamed
/// save → load, with no <c>docker exec</c> plumbing and no docker CLI on either side. The price: the outer
/// engine must run on this machine (a unix socket), which is what a build container is for.
/// </para>
/// Disposing stops the container (the inner dockerd shuts its containers down and removes their
/// cgroups), removes it and its volume and the socket directory — also after a failure or a cancel.
/// </summary>
public sealed class DindSession : IAsyncDisposable
{
    /// <summary>Label on the container and its volume: the session id.</summary>
    public const string Label = "layertool.dind";

    private const string SocketName = "docker.sock";

    private readonly DockerConnection _outer;
    private readonly IProgress<string>? _log;
    private readonly bool _ownsSocketDirectory;
    private bool _disposed;

    private DindSession(DockerConnection outer, string id, string socketDirectory, bool ownsSocketDirectory, IProgress<string>? log)
    {
        _outer = outer;
        Id = id;
        SocketDirectory = socketDirectory;
        _ownsSocketDirectory = ownsSocketDirectory;
        _log = log;
    }

    public string Id { get; }

    public string ContainerName => $"layertool-dind-{Id}";

    public string VolumeName => $"layertool-dind-{Id}";

    public string? ContainerId { get; private set; }

    public string SocketDirectory { get; }

    /// <summary>The inner daemon's endpoint on this machine.</summary>
    public Uri InnerEndpoint => new($"unix://{Path.Combine(SocketDirectory, SocketName)}");

    /// <summary>The privileges the container got in the end.</summary>
    public DindIsolation Isolation { get; private set; }

    /// <summary>Why <c>--privileged</c> was not used, when the launcher fell back.</summary>
    public string? FallbackReason { get; private set; }

    /// <summary>From creating the container to the inner daemon's first answer.</summary>
    public TimeSpan StartDuration { get; private set; }

    /// <summary>The inner daemon. Valid once <see cref="StartAsync"/> returned.</summary>
    public DockerConnection Inner { get; private set; } = null!;

    /// <summary>
    /// Starts a dind container on <paramref name="outer"/> and waits until its daemon answers. On any
    /// failure everything created so far is removed before the exception leaves.
    /// </summary>
    public static async Task<DindSession> StartAsync(DockerConnection outer, DindOptions options, IProgress<string>? log,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(outer);
        ArgumentNullException.ThrowIfNull(options);
        var endpoint = outer.Client.Options.Endpoint;
        if (endpoint is null || !string.Equals(endpoint.Scheme, "unix", StringComparison.OrdinalIgnoreCase))
            throw new EngineException($"a dind build needs an engine on this machine (a unix socket), not {endpoint?.ToString() ?? outer.EndpointDescription}: the inner daemon's socket is shared through a host directory");

        // An owner ID: the sweep at the start of a later run removes the container and its volume if this process is killed.
        var id = Sweep.ProcessOwner.NewId();
        var owns = options.SocketDirectory is null;
        var directory = options.SocketDirectory ?? DefaultSocketDirectory(id);
        var session = new DindSession(outer, id, directory, owns, log);
        try
        {
            await session.StartCoreAsync(options, cancellationToken).ConfigureAwait(false);
            return session;
        }
        catch
        {
            await session.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static string DefaultSocketDirectory(string id)
    {
        // sun_path holds 108 bytes: stay short whatever TMPDIR is.
        var candidate = Path.Combine(Path.GetTempPath(), $"layertool-dind-{id}");
        return candidate.Length + SocketName.Length + 1 < 100 ? candidate : Path.Combine("/tmp", $"layertool-dind-{id}");
    }

    private async Task StartCoreAsync(DindOptions options, CancellationToken cancellationToken)
    {
        var client = _outer.Client;
        if (await ImageTransfer.ImageIdAsync(_outer, options.Image, cancellationToken).ConfigureAwait(false) is null)
        {
            if (options.BuildIfMissing is null)
                throw new EngineException($"the dind image {options.Image} is not in the engine, and no LayerTool repository (Dockerfile.dind) was found to build it from: build it with `layertool dind build-image --repo DIR -t {options.Image}`");
            // As docker pulls an image it lacks: build it once, say so, show the progress.
            _log?.Report($"dind: {options.Image} is not in the engine; building it now from {options.BuildIfMissing.RepositoryRoot} (first use, a few minutes)");
            var buildWatch = Stopwatch.StartNew();
            var built = await DindImageBuilder.BuildAsync(_outer, options.BuildIfMissing with { Tag = options.Image }, _log, cancellationToken).ConfigureAwait(false);
            _log?.Report($"dind: built {options.Image} ({built.ImageId[..Math.Min(19, built.ImageId.Length)]}) in {buildWatch.Elapsed.TotalSeconds:0.0}s");
        }

        var info = await client.System.GetSystemInfoAsync(cancellationToken).ConfigureAwait(false);
        var cgroupV2 = string.Equals(info.CgroupVersion, "2", StringComparison.Ordinal);

        // The inner root creates the socket here; group-owned by our group so a non-root user of the
        // outer engine can connect too.
        if (OperatingSystem.IsWindows()) throw new EngineException("dind builds need Linux (or a Linux VM) to share the inner daemon's unix socket");
        Directory.CreateDirectory(SocketDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                                                   | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);

        var labels = new Dictionary<string, string>(StringComparer.Ordinal) { [Label] = Id };
        foreach (var (k, v) in options.Labels ?? new Dictionary<string, string>()) labels[k] = v;

        await client.Volumes.CreateAsync(new VolumesCreateParameters { Name = VolumeName, Labels = labels }, cancellationToken)
            .ConfigureAwait(false);

        var watch = Stopwatch.StartNew();
        var isolation = options.Isolation == DindIsolation.Auto ? DindIsolation.Privileged : options.Isolation;
        try
        {
            await CreateAndStartAsync(options, labels, isolation, cgroupV2, cancellationToken).ConfigureAwait(false);
        }
        catch (DockerApiException e) when (options.Isolation == DindIsolation.Auto && IsCapabilityRefusal(e))
        {
            FallbackReason = FirstLine(e.ResponseBody ?? e.Message);
            _log?.Report($"this host refuses --privileged ({FallbackReason}); using every capability but CAP_SYS_RESOURCE, unconfined seccomp/AppArmor/system paths, all devices{(cgroupV2 ? "" : ", the host cgroup namespace")}");
            await RemoveContainerAsync(cancellationToken).ConfigureAwait(false);
            isolation = DindIsolation.ExplicitCapabilities;
            await CreateAndStartAsync(options, labels, isolation, cgroupV2, cancellationToken).ConfigureAwait(false);
        }
        Isolation = isolation;

        Inner = await WaitForInnerDaemonAsync(options.EffectiveStartTimeout, cancellationToken).ConfigureAwait(false);
        StartDuration = watch.Elapsed;
        _log?.Report($"dind {ContainerName} ready in {StartDuration.TotalSeconds:0.0}s ({(Isolation == DindIsolation.Privileged ? "privileged" : "explicit capabilities")}, inner engine {Inner.ServerVersion} at {InnerEndpoint})");
    }

    private async Task CreateAndStartAsync(DindOptions options, Dictionary<string, string> labels, DindIsolation isolation, bool cgroupV2,
        CancellationToken cancellationToken)
    {
        var env = new List<string>
        {
            $"DIND_HOSTS=unix:///var/run/docker.sock unix://{DindHostConfig.SocketMount}/{SocketName}",
            $"DIND_SOCKET_GROUP={CurrentGroupId()}",
            $"DIND_WAIT={(int)Math.Ceiling(options.EffectiveStartTimeout.TotalSeconds)}",
        };
        if (options.DaemonArguments is { Count: > 0 } extra) env.Add($"DIND_DOCKERD_ARGS={string.Join(' ', extra)}");

        var created = await _outer.Client.Containers.CreateContainerAsync(new CreateContainerParameters
        {
            Name = ContainerName,
            Image = options.Image,
            Env = env,
            Labels = labels,
            HostConfig = DindHostConfig.Create(isolation, VolumeName, SocketDirectory, cgroupV2),
        }, cancellationToken).ConfigureAwait(false);
        ContainerId = created.ID;
        await _outer.Client.Containers.StartContainerAsync(created.ID, new ContainerStartParameters(), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>runc's answer when the bounding set lacks a capability that --privileged asks for.</summary>
    internal static bool IsCapabilityRefusal(DockerApiException e)
    {
        var text = e.ResponseBody ?? e.Message;
        return text.Contains("apply caps", StringComparison.OrdinalIgnoreCase)
               || (text.Contains("operation not permitted", StringComparison.OrdinalIgnoreCase) && text.Contains("cap", StringComparison.OrdinalIgnoreCase));
    }

    private async Task<DockerConnection> WaitForInnerDaemonAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var socket = Path.Combine(SocketDirectory, SocketName);
        var deadline = Stopwatch.StartNew();
        // wrapdocker.sh gives up after the same timeout and exits with the daemon's log; a little grace
        // here lets its message through instead of ours.
        var limit = timeout + TimeSpan.FromSeconds(5);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (File.Exists(socket))
            {
                try
                {
                    return await DockerConnection.ConnectAsync(new EngineSettings(InnerEndpoint), cancellationToken).ConfigureAwait(false);
                }
                catch (EngineException) when (deadline.Elapsed < limit)
                {
                    // the socket exists a moment before the API answers
                }
            }

            var state = await _outer.Client.Containers.InspectContainerAsync(ContainerId!, cancellationToken).ConfigureAwait(false);
            if (state.State is { Running: false })
                throw new EngineException($"the dind container {ContainerName} exited with status {state.State.ExitCode} before its daemon answered:\n{await LogsAsync(cancellationToken).ConfigureAwait(false)}");
            if (deadline.Elapsed >= limit)
                throw new EngineException($"the daemon in {ContainerName} did not answer within {timeout.TotalSeconds:0}s:\n{await LogsAsync(cancellationToken).ConfigureAwait(false)}");
            await Task.Delay(TimeSpan.FromMilliseconds(200), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The container's output (wrapdocker.sh and, on failure, the daemon's log), the last lines.</summary>
    public async Task<string> LogsAsync(CancellationToken cancellationToken)
    {
        if (ContainerId is null) return "";
        try
        {
            using var stream = await _outer.Client.Containers.GetContainerLogsAsync(ContainerId,
                new ContainerLogsParameters { ShowStdout = true, ShowStderr = true, Tail = "80" }, cancellationToken).ConfigureAwait(false);
            var (stdout, stderr) = await stream.ReadOutputToEndAsync(cancellationToken).ConfigureAwait(false);
            return (stdout + stderr).TrimEnd();
        }
        catch (DockerApiException e)
        {
            return $"(no logs: {e.Message})";
        }
    }

    /// <summary>Copies images the build needs from the outer engine into the inner one (those the
    /// outer engine lacks are left for the inner daemon to pull).</summary>
    public Task<ImageTransferResult> ProvideImagesAsync(IEnumerable<string> references, CancellationToken cancellationToken) =>
        ImageTransfer.CopyAsync(_outer, Inner, references, cancellationToken);

    /// <summary>Copies images (names or IDs) from the inner engine back to the outer one.</summary>
    public async Task<ImageTransferResult> BringBackAsync(IEnumerable<string> references, CancellationToken cancellationToken)
    {
        var result = await ImageTransfer.CopyAsync(Inner, _outer, references, cancellationToken).ConfigureAwait(false);
        if (result.MissingAtSource.Count > 0)
            throw new EngineException($"the dind engine has no image {string.Join(", ", result.MissingAtSource)} to bring back");
        return result;
    }

    private static string CurrentGroupId()
    {
        // /proc/self/status "Gid: real effective saved fs"
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (!line.StartsWith("Gid:", StringComparison.Ordinal)) continue;
            var fields = line[4..].Split('\t', ' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length > 1) return fields[1];
        }
        return "0";
    }

    /// <summary>The first line of an engine error, unwrapped from its JSON body when it has one.</summary>
    internal static string FirstLine(string text)
    {
        text = text.Trim();
        if (text.StartsWith('{'))
        {
            try
            {
                using var json = System.Text.Json.JsonDocument.Parse(text);
                if (json.RootElement.TryGetProperty("message", out var message) && message.GetString() is { } m) text = m;
            }
            catch (System.Text.Json.JsonException)
            {
            }
        }
        return text.Split('\n')[0].Trim();
    }

    private async Task RemoveContainerAsync(CancellationToken cancellationToken)
    {
        if (ContainerId is null) return;
        try
        {
            await _outer.Client.Containers.RemoveContainerAsync(ContainerId, new ContainerRemoveParameters { Force = true, RemoveVolumes = true },
                cancellationToken).ConfigureAwait(false);
        }
        catch (DockerContainerNotFoundException)
        {
        }
        ContainerId = null;
    }

    /// <summary>Stops and removes the container, its volume and the socket directory. Never throws:
    /// what cannot be removed is reported to the log.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        Inner?.Dispose();
        // Our own budget: cleanup also runs after the caller's token was cancelled (Ctrl-C).
        using var budget = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var token = budget.Token;
        if (ContainerId is not null)
        {
            try
            {
                // A graceful stop: wrapdocker.sh forwards SIGTERM, dockerd stops its containers and removes
                // their cgroups (a kill would leave them behind in the host's hierarchy on cgroup v1).
                await _outer.Client.Containers.StopContainerAsync(ContainerId, new ContainerStopParameters { WaitBeforeKillSeconds = 20 }, token)
                    .ConfigureAwait(false);
            }
            catch (Exception e) when (e is DockerApiException or OperationCanceledException or HttpRequestException or IOException)
            {
                _log?.Report($"stopping {ContainerName}: {e.Message}");
            }
            try
            {
                await RemoveContainerAsync(token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is DockerApiException or OperationCanceledException or HttpRequestException or IOException)
            {
                _log?.Report($"could not remove the dind container {ContainerName}: {e.Message}");
            }
        }
        try
        {
            await _outer.Client.Volumes.RemoveAsync(VolumeName, force: true, token).ConfigureAwait(false);
        }
        catch (DockerApiException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
        }
        catch (Exception e) when (e is DockerApiException or OperationCanceledException or HttpRequestException or IOException)
        {
            _log?.Report($"could not remove the dind volume {VolumeName}: {e.Message}");
        }
        if (_ownsSocketDirectory)
        {
            try
            {
                if (Directory.Exists(SocketDirectory)) Directory.Delete(SocketDirectory, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _log?.Report(string.Create(CultureInfo.InvariantCulture, $"could not remove {SocketDirectory}: {e.Message}"));
            }
        }
    }
}
