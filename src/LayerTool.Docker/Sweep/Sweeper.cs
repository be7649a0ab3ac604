using System.Text;
using Docker.DotNet;
using Docker.DotNet.Models;
using LayerTool.Docker.Overlay2;
using LayerTool.Image.Formats;

namespace LayerTool.Docker.Sweep;

/// <summary>What one sweep removed, and what it could not (never an error: the run goes on).</summary>
/// <param name="Containers">Names of the containers removed.</param>
/// <param name="TempDirectories">Temp directories removed.</param>
/// <param name="Warnings">What could not be looked at or removed, one line each.</param>
public sealed record SweepReport(IReadOnlyList<string> Containers, IReadOnlyList<string> TempDirectories, IReadOnlyList<string> Warnings)
{
    public static SweepReport Empty { get; } = new([], [], []);
}

/// <summary>
/// Removes what LayerTool processes that no longer exist left behind: a process killed with SIGKILL (or by the
/// OOM killer, or a second Ctrl-C during its clean-up) leaves its export container, its build containers, its temp
/// directory and, between sending a piped load's config and opening its pipe, an engine waiting on that pipe. Each
/// carries its owner in its name (<see cref="ProcessOwner.NewId"/>):
/// <list type="bullet">
/// <item>export containers <c>layertool-export-ID</c> (<see cref="Images.DockerImageEngine"/>);</item>
/// <item>build containers <c>layertool-build-ID-N</c> (the build ID is an owner ID; a label would be merged into the
/// committed image by <c>POST /commit</c>, so the name carries it);</item>
/// <item>dind build containers <c>layertool-dind-ID</c>, their volumes and their socket directories of the same name (<see cref="Dind.DindSession"/>);</item>
/// <item>temp directories <c>layertool-tmp-ID</c>, where a run keeps every temp file (<see cref="CreateRunTempDirectory"/>);</item>
/// <item>load pipes <c>layertool-ID/layer.tar</c> in the engine's import directories (<see cref="ReleasePipes"/>).</item>
/// </list>
/// Only what belongs to a process that is <see cref="OwnerState.Gone"/> is touched: a live owner's things, and
/// anything whose owner cannot be judged (older names, other machines, other PID namespaces), are left alone. The
/// engine is asked once (one container list with a name filter).
/// </summary>
public static class Sweeper
{
    /// <summary>Prefix of a run's temp directory.</summary>
    public const string TempPrefix = "layertool-tmp-";

    /// <summary>Prefix of an export container's name (<see cref="Images.DockerImageEngine"/>).</summary>
    public const string ExportPrefix = "layertool-export-";

    /// <summary>Prefix of a dind build container's name and of its volume (<see cref="Dind.DindSession"/>).</summary>
    public const string DindPrefix = "layertool-dind-";

    /// <summary>Prefix of a classic build step's container name (<c>BuildExecutor.ContainerNamePrefix</c> is this).</summary>
    public const string BuildPrefix = "layertool-build-";

    /// <summary>How long a sweep may take in all (removing a container can be slow on a busy engine).</summary>
    public static TimeSpan Timeout { get; } = TimeSpan.FromSeconds(15);

    /// <summary>Makes this run's temp directory, <c>ROOT/layertool-tmp-ID</c> (mode 0700), owned by this process.</summary>
    public static string CreateRunTempDirectory(string root)
    {
        ArgumentNullException.ThrowIfNull(root);
        var path = Path.Combine(root, TempPrefix + ProcessOwner.NewId());
        if (OperatingSystem.IsWindows()) Directory.CreateDirectory(path);
        else Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    /// <summary>Deletes a directory and what it holds; false (not an exception) when some of it could not go.</summary>
    public static bool TryDeleteDirectory(string path)
    {
        try
        {
            if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>
    /// The owner of a container from its name (with or without the engine's leading <c>/</c>): export and build
    /// containers whose name holds an owner ID; null for any other.
    /// </summary>
    public static ProcessOwner? OwnerOfContainer(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        name = name.TrimStart('/');
        string rest;
        if (name.StartsWith(ExportPrefix, StringComparison.Ordinal)) rest = name[ExportPrefix.Length..];
        else if (name.StartsWith(BuildPrefix, StringComparison.Ordinal)) rest = name[BuildPrefix.Length..];
        else if (name.StartsWith(DindPrefix, StringComparison.Ordinal)) rest = name[DindPrefix.Length..];
        else return null;
        return ProcessOwner.TryParseId(rest, out var owner) ? owner : null;
    }

    /// <summary>
    /// The whole sweep: temp directories under <paramref name="tempRoot"/>, then (with an engine) containers.
    /// Never throws for what it finds or cannot do; bounded by <see cref="Timeout"/> and the caller's token
    /// (cancelled: throws <see cref="OperationCanceledException"/>, the run is over anyway).
    /// </summary>
    public static async Task<SweepReport> SweepAsync(DockerConnection? engine, string tempRoot, CancellationToken cancellationToken)
    {
        var warnings = new List<string>();
        var temp = SweepTemp(tempRoot, warnings);
        IReadOnlyList<string> containers = [];
        if (engine is not null)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(Timeout);
            try
            {
                containers = await SweepContainersAsync(engine.Client, warnings, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                warnings.Add($"the sweep of containers left by killed LayerTool processes took longer than {Timeout.TotalSeconds:0} s; the next run tries again");
            }
        }
        return new SweepReport(containers, temp, warnings);
    }

    /// <summary>Deletes the temp directories (<see cref="TempPrefix"/>) whose owner is gone; returns their paths.</summary>
    public static IReadOnlyList<string> SweepTemp(string tempRoot, List<string> warnings)
    {
        ArgumentNullException.ThrowIfNull(tempRoot);
        ArgumentNullException.ThrowIfNull(warnings);
        var removed = new List<string>();
        IEnumerable<string> candidates;
        try
        {
            // Run temp directories, and the socket directories of dind engines (DindSession), both named after their owner.
            candidates = [.. Directory.EnumerateDirectories(tempRoot, TempPrefix + "*"), .. Directory.EnumerateDirectories(tempRoot, DindPrefix + "*")];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            warnings.Add($"cannot look for temp directories left by killed LayerTool processes in {tempRoot}: {e.Message}");
            return removed;
        }
        foreach (var path in candidates)
        {
            var name = Path.GetFileName(path);
            var prefix = name.StartsWith(TempPrefix, StringComparison.Ordinal) ? TempPrefix : DindPrefix;
            if (!ProcessOwner.TryParseId(name[prefix.Length..], out var owner) || owner.State() != OwnerState.Gone) continue;
            if (TryDeleteDirectory(path)) removed.Add(path);
            else warnings.Add($"cannot remove {path}, left by a LayerTool process that was killed");
        }
        return removed;
    }

    /// <summary>Removes the export and build containers whose owner is gone (one list, then the removals side by side).</summary>
    internal static async Task<IReadOnlyList<string>> SweepContainersAsync(DockerClient client, List<string> warnings, CancellationToken cancellationToken)
    {
        IList<ContainerListResponse> found;
        try
        {
            found = await client.Containers.ListContainersAsync(new ContainersListParameters
            {
                All = true,
                // The engine matches the filter as a regular expression against the name, which starts with '/'.
                Filters = new Dictionary<string, IDictionary<string, bool>>
                {
                    ["name"] = new Dictionary<string, bool> { ["^/?layertool-(build|export|dind)-"] = true },
                },
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is DockerApiException or HttpRequestException or IOException or TimeoutException)
        {
            warnings.Add($"cannot list containers left by killed LayerTool processes: {EngineErrors.Cause(e)}");
            return [];
        }
        var doomed = new List<(string Id, string Name)>();
        foreach (var container in found)
        {
            var name = container.Names?.Select(n => n.TrimStart('/')).FirstOrDefault(n => OwnerOfContainer(n) is not null);
            if (name is not null && OwnerOfContainer(name)!.State() == OwnerState.Gone) doomed.Add((container.ID, name));
        }
        var removals = doomed.Select(async c =>
        {
            try
            {
                try
                {
                    await client.Containers.RemoveContainerAsync(c.Id, new ContainerRemoveParameters { Force = true, RemoveVolumes = true }, cancellationToken)
                        .ConfigureAwait(false);
                }
                catch (DockerApiException e) when (e.StatusCode != System.Net.HttpStatusCode.NotFound && e.StatusCode != System.Net.HttpStatusCode.Conflict)
                {
                    // A process killed a moment ago may still have a request under way in the engine (an export holding
                    // the container's filesystem): once more, shortly after, before calling it a failure.
                    await Task.Delay(TimeSpan.FromMilliseconds(500), cancellationToken).ConfigureAwait(false);
                    await client.Containers.RemoveContainerAsync(c.Id, new ContainerRemoveParameters { Force = true, RemoveVolumes = true }, cancellationToken)
                        .ConfigureAwait(false);
                }
                // A dind container keeps its engine's data in a named volume of its own name.
                if (c.Name.StartsWith(DindPrefix, StringComparison.Ordinal)) await RemoveVolumeAsync(client, c.Name, cancellationToken).ConfigureAwait(false);
                return c.Name;
            }
            catch (DockerContainerNotFoundException)
            {
                return c.Name; // gone already (another run swept it at the same time)
            }
            catch (DockerApiException e) when (e.StatusCode == System.Net.HttpStatusCode.Conflict
                && e.ResponseBody?.Contains("already in progress", StringComparison.OrdinalIgnoreCase) == true)
            {
                return c.Name; // another run is removing it at this moment
            }
            catch (Exception e) when (e is DockerApiException or HttpRequestException or IOException or TimeoutException)
            {
                lock (warnings) warnings.Add($"cannot remove container {c.Name}, left by a LayerTool process that was killed: {EngineErrors.Cause(e)}");
                return null;
            }
        });
        return [.. (await Task.WhenAll(removals).ConfigureAwait(false)).OfType<string>()];
    }

    private static async Task RemoveVolumeAsync(DockerClient client, string name, CancellationToken cancellationToken)
    {
        try
        {
            await client.Volumes.RemoveAsync(name, force: true, cancellationToken).ConfigureAwait(false);
        }
        catch (DockerApiException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
        }
    }

    /// <summary>
    /// Releases the load pipes whose LayerTool process is gone (killed between sending a piped load's config and
    /// opening its pipe: the engine then waits on the pipe for ever). A pipe the engine has open for reading is
    /// opened and closed, so the engine reads an empty layer, which fails its diffID: that load ends, having
    /// loaded nothing. Pipes of live owners, and of owners that cannot be judged, are left. Returns how many it
    /// released. <paramref name="engineTemp"/> is the engine's temp directory (<c>DATA-ROOT/tmp</c>), seen locally.
    /// </summary>
    public static int ReleasePipes(string engineTemp)
    {
        ArgumentNullException.ThrowIfNull(engineTemp);
        var released = 0;
        foreach (var import in Squash.LoadPipe.Imports(engineTemp))
        {
            try
            {
                foreach (var mine in Directory.EnumerateDirectories(Path.Combine(engineTemp, import), "layertool-*"))
                {
                    var name = Path.GetFileName(mine);
                    if (!ProcessOwner.TryParseId(name["layertool-".Length..], out var owner) || owner.State() != OwnerState.Gone) continue;
                    var pipe = Path.Combine(engineTemp, import, StreamedDockerArchive.PipedLayerPath(name));
                    using var handle = NativeFs.TryOpenPipeWriter(NativeFs.Z(Encoding.UTF8.GetBytes(pipe)), out _);
                    if (handle is not null) released++;
                }
            }
            catch (IOException)
            {
                // That load ended while its directory was listed: nothing of it to release; the others still are.
            }
        }
        return released;
    }
}
