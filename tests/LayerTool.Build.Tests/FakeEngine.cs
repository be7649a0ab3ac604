using LayerTool.Image;
using System.Collections.Concurrent;
using System.Formats.Tar;
using System.Text;
using LayerTool.Docker;
using LayerTool.Docker.Images;

namespace LayerTool.Build.Tests;

/// <summary>
/// An in-memory engine: images are configs with parents, containers remember what was done to them, RUN
/// commands "exit" with the code <see cref="ExitCodeFor"/> says. Commit keeps the config it is sent plus, as the engine
/// does, the container's env keys that config lacks.
/// </summary>
public sealed class FakeEngine : IDockerEngine
{
    private int _next;

    public ConcurrentDictionary<string, EngineImage> Images { get; } = new();

    public ConcurrentDictionary<string, string> Tags { get; } = new();

    public ConcurrentDictionary<string, ContainerSpec> Containers { get; } = new();

    public List<ContainerSpec> Created { get; } = [];

    public List<(string Container, ContainerConfig Config)> Commits { get; } = [];

    public List<(string Container, string Path, List<string> Entries)> Uploads { get; } = [];

    /// <summary>Paths that exist as directories in every container.</summary>
    public HashSet<string> Directories { get; } = ["/", "/etc", "/home", "/home/user", "/tmp"];

    public string Passwd { get; set; } = "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n";

    public string Group { get; set; } = "root:x:0:\nuser:x:1000:\nstaff:x:50:\n";

    public Func<IReadOnlyList<string>, long> ExitCodeFor { get; set; } = _ => 0;

    /// <summary>Called when a container starts (e.g. to cancel mid-RUN).</summary>
    public Action<string>? OnStart { get; set; }

    public TaskCompletionSource? BlockWait { get; set; }

    public FakeEngine()
    {
        AddImage("busybox:latest", new ContainerConfig { Env = ["PATH=/bin"], Cmd = ["sh"] });
    }

    /// <summary>An engine image as the fake knows it: an ID, a config, its diff IDs, its size.</summary>
    public static EngineImage Image(string id, ContainerConfig config, IReadOnlyList<string> diffIds, long size) =>
        new(id, [], [], diffIds, size, null, "linux", "amd64", null) { Config = config };

    public string AddImage(string reference, ContainerConfig config, string? id = null)
    {
        id ??= NewId();
        Images[id] = FakeEngine.Image(id, config, ["sha256:layer-" + id[7..15]], 100);
        Tags[reference] = id;
        return id;
    }

    public string NewId() => "sha256:" + Interlocked.Increment(ref _next).ToString("x64", System.Globalization.CultureInfo.InvariantCulture);

    public Task<EngineImage?> InspectImageAsync(string reference, CancellationToken cancellationToken)
    {
        if (Tags.TryGetValue(reference, out var id)) reference = id;
        // As the engine: a name without a tag means :latest.
        else if (!reference.StartsWith("sha256:", StringComparison.Ordinal) && !reference.Contains('@', StringComparison.Ordinal)
                 && reference.LastIndexOf(':') <= reference.LastIndexOf('/') && Tags.TryGetValue(reference + ":latest", out var latest)) reference = latest;
        return Task.FromResult(Images.GetValueOrDefault(reference));
    }

    public Task PullImageAsync(string reference, IProgress<string>? progress, CancellationToken cancellationToken) =>
        throw new EngineException($"pulling {reference} failed: pull access denied for {reference}");

    public Task<string> ImportEmptyImageAsync(CancellationToken cancellationToken) =>
        Task.FromResult(Tags.TryGetValue("scratch-empty", out var id) ? id : AddImage("scratch-empty", new ContainerConfig()));

    public Task<string> CreateContainerAsync(ContainerSpec spec, CancellationToken cancellationToken)
    {
        if (!Images.ContainsKey(spec.Image)) throw new EngineException($"no such image {spec.Image}");
        var id = "c" + Interlocked.Increment(ref _next).ToString("x20", System.Globalization.CultureInfo.InvariantCulture);
        Containers[id] = spec;
        lock (Created) Created.Add(spec);
        return Task.FromResult(id);
    }

    public Task<Task> AttachAsync(string containerId, Action<ReadOnlyMemory<byte>> onOutput, CancellationToken cancellationToken)
    {
        onOutput(Encoding.UTF8.GetBytes("output of " + containerId + "\n"));
        return Task.FromResult(Task.CompletedTask);
    }

    public Task StartContainerAsync(string containerId, CancellationToken cancellationToken)
    {
        OnStart?.Invoke(containerId);
        return Task.CompletedTask;
    }

    public async Task<long> WaitContainerAsync(string containerId, CancellationToken cancellationToken)
    {
        if (BlockWait is not null) await BlockWait.Task.WaitAsync(cancellationToken);
        var c = Containers[containerId].Config;
        return ExitCodeFor([.. (c.Entrypoint ?? []), .. (c.Cmd ?? [])]);
    }

    public Task<string> CommitAsync(string containerId, ContainerConfig config, string? author, CancellationToken cancellationToken)
    {
        var spec = Containers[containerId];
        lock (Commits) Commits.Add((containerId, config));
        // As the engine does: the container's env keys the commit config lacks are appended.
        var keys = (config.Env ?? []).Select(e => e.Split('=')[0]).ToHashSet(StringComparer.Ordinal);
        var merged = config with { Env = [.. config.Env ?? [], .. (spec.Config.Env ?? []).Where(e => !keys.Contains(e.Split('=')[0]))] };
        var id = NewId();
        Images[id] = FakeEngine.Image(id, merged, [.. Images[spec.Image].DiffIds, "sha256:layer-" + id[7..15]], 100);
        return Task.FromResult(id);
    }

    public List<(string Image, IReadOnlyList<string> Env, IReadOnlyList<string> CreatedBy)> Replacements { get; } = [];

    /// <summary>What <see cref="CanReplaceStepConfigAsync"/> answers (false: as an engine with the containerd image store).</summary>
    public bool CanReplace { get; set; } = true;

    public Task<bool> CanReplaceStepConfigAsync(CancellationToken cancellationToken) => Task.FromResult(CanReplace);

    public Task<string> ReplaceStepConfigAsync(string imageId, string? parentId, IReadOnlyList<string> env, IReadOnlyList<string> createdBy, CancellationToken cancellationToken)
    {
        Replacements.Add((imageId, env, createdBy));
        var old = Images[imageId];
        var id = NewId();
        Images[id] = old with { Id = id, Config = old.Config with { Env = env } };
        Images.TryRemove(imageId, out _);
        return Task.FromResult(id);
    }

    public Task PutArchiveAsync(string containerId, string directory, Stream tar, CancellationToken cancellationToken)
    {
        var names = new List<string>();
        using (var reader = new TarReader(tar, leaveOpen: true))
        {
            // A directory's name may end in '/' (as docker's own tars write it): the same entry either way.
            while (reader.GetNextEntry() is { } e) names.Add($"{e.Name.TrimEnd('/')} {e.EntryType} {e.Uid}:{e.Gid}");
        }
        lock (Uploads) Uploads.Add((containerId, directory, names));
        return Task.CompletedTask;
    }

    /// <summary>Paths that exist as regular files in every container (besides /etc/passwd and /etc/group).</summary>
    public HashSet<string> Files { get; } = [];

    public Task<Stream> GetArchiveAsync(string containerId, string path, CancellationToken cancellationToken)
    {
        var content = path switch { "/etc/passwd" => Passwd, "/etc/group" => Group, _ => "data of " + path };
        var ms = new MemoryStream();
        using (var writer = new TarWriter(ms, leaveOpen: true))
        {
            if (Directories.Contains(path))
            {
                // As the engine: the directory under its base name, then everything below it.
                var root = path == "/" ? "/" : Path.GetFileName(path);
                var under = path == "/" ? "/" : path + "/";
                writer.WriteEntry(new PaxTarEntry(TarEntryType.Directory, root));
                foreach (var p in Directories.Concat(Files).Where(p => p.StartsWith(under, StringComparison.Ordinal) && p != path).Order(StringComparer.Ordinal))
                {
                    var name = (root == "/" ? "/" : root + "/") + p[under.Length..];
                    writer.WriteEntry(Directories.Contains(p)
                        ? new PaxTarEntry(TarEntryType.Directory, name)
                        : new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(Encoding.UTF8.GetBytes("data of " + p)) });
                }
            }
            else
            {
                var e = new PaxTarEntry(TarEntryType.RegularFile, Path.GetFileName(path)) { DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)) };
                writer.WriteEntry(e);
            }
        }
        ms.Position = 0;
        return Task.FromResult<Stream>(ms);
    }

    public Task<PathStat?> StatPathAsync(string containerId, string path, CancellationToken cancellationToken)
    {
        if (Directories.Contains(path)) return Task.FromResult<PathStat?>(new PathStat(Path.GetFileName(path), 4096, (1u << 31) | 0x1ED, null));
        if (path is "/etc/passwd" or "/etc/group" || Files.Contains(path)) return Task.FromResult<PathStat?>(new PathStat(Path.GetFileName(path), 10, 0x1A4, null));
        return Task.FromResult<PathStat?>(null);
    }

    public Task RemoveContainerAsync(string containerId, CancellationToken cancellationToken)
    {
        Containers.TryRemove(containerId, out _);
        foreach (var (k, v) in Containers)
            if (v.Name == containerId) Containers.TryRemove(k, out _);
        return Task.CompletedTask;
    }

    public Task TagImageAsync(string imageId, string reference, CancellationToken cancellationToken)
    {
        Tags[reference] = imageId;
        return Task.CompletedTask;
    }

    /// <summary>References removed through <see cref="RemoveImageAsync"/>, in order.</summary>
    public List<string> Removed { get; } = [];

    public Task<bool> RemoveImageAsync(string reference, CancellationToken cancellationToken)
    {
        lock (Removed) Removed.Add(reference);
        if (!Tags.TryRemove(reference, out var id)) return Task.FromResult(false);
        if (!Tags.Values.Contains(id)) Images.TryRemove(id, out _);
        return Task.FromResult(true);
    }

    public Task<string> ReplaceOnBuildAsync(string imageId, IReadOnlyList<string>? onBuild, IReadOnlyList<string> tags, CancellationToken cancellationToken)
    {
        if (Tags.TryGetValue(imageId, out var byTag)) imageId = byTag;
        var old = Images[imageId];
        var id = NewId();
        Images[id] = old with { Id = id, Config = old.Config with { OnBuild = onBuild } };
        foreach (var t in tags) Tags[t] = id;
        return Task.FromResult(id);
    }
}
