using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Docker.DotNet;
using Docker.DotNet.Models;
using LayerTool.Docker.Images;
using LayerTool.Image;
using ContainerConfig = LayerTool.Image.ContainerConfig;
using LayerTool.Image.Formats;

namespace LayerTool.Docker;

/// <summary>
/// <see cref="IDockerEngine"/> over the Docker Engine API (Docker.DotNet.Enhanced). Every transport failure
/// becomes an <see cref="EngineException"/> that says what the build was doing.
/// </summary>
public sealed class DockerBuildEngine(DockerConnection connection) : IDockerEngine
{
    /// <summary>The image FROM scratch stages start from (an empty filesystem; the API cannot create a container without an image).</summary>
    public const string EmptyImageReference = "layertool-scratch:zero-layers";

    private DockerClient Client => connection.Client;

    private string? _imageDb;
    private bool? _graphDriverStore;

    public Task<EngineImage?> InspectImageAsync(string reference, CancellationToken cancellationToken) =>
        Call($"inspect image {reference}", async () =>
        {
            try
            {
                var image = await Client.Images.InspectImageAsync(reference, cancellationToken).ConfigureAwait(false);
                return EngineImage.From(image);
            }
            catch (DockerImageNotFoundException)
            {
                return null;
            }
            catch (DockerApiException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
            {
                return null;
            }
        });

    public Task PullImageAsync(string reference, IProgress<string>? progress, CancellationToken cancellationToken) =>
        Call($"pull {reference}", async () =>
        {
            var (name, tag) = SplitTag(reference);
            string? error = null;
            var report = new SyncProgress<JSONMessage>(m =>
            {
                if (m.Error is not null) error ??= m.Error.Message;
                else if (m.Status is not null) progress?.Report(m.Status);
            });
            await Client.Images.CreateImageAsync(new ImagesCreateParameters { FromImage = name, Tag = tag }, null, report, cancellationToken).ConfigureAwait(false);
            if (error is not null) throw new EngineException($"pulling {reference} failed: {error}");
            return true;
        });

    public Task<string> ImportEmptyImageAsync(CancellationToken cancellationToken) =>
        Call("create the empty image for FROM scratch", async () =>
        {
            var existing = await InspectImageAsync(EmptyImageReference, cancellationToken).ConfigureAwait(false);
            if (existing is not null) return existing.Id;
            // A config with no layers at all, loaded as an image: containers can be created from it and
            // their first commit is the image's only layer, as with docker build's FROM scratch. An engine
            // that refuses a zero-layer archive gets an imported empty layer instead (one extra empty layer).
            if (!await TryLoadZeroLayerImageAsync(cancellationToken).ConfigureAwait(false))
            {
                using var empty = new MemoryStream();
                using (var tar = new LayerTool.Image.Layers.Tar.LayerTarWriter(empty, leaveOpen: true, hashLayer: false))
                    await tar.FinishAsync(cancellationToken).ConfigureAwait(false);
                empty.Position = 0;
                var (name, tag) = SplitTag(EmptyImageReference);
                string? error = null;
                var report = new SyncProgress<JSONMessage>(m => error ??= m.Error?.Message);
                await Client.Images.CreateImageAsync(new ImagesCreateParameters { FromSrc = "-", Repo = name, Tag = tag }, empty, null, report, cancellationToken).ConfigureAwait(false);
                if (error is not null) throw new EngineException($"importing an empty image failed: {error}");
            }
            var created = await InspectImageAsync(EmptyImageReference, cancellationToken).ConfigureAwait(false);
            return created?.Id ?? throw new EngineException("the empty image is missing after its creation");
        });

    private async Task<bool> TryLoadZeroLayerImageAsync(CancellationToken cancellationToken)
    {
        var architecture = System.Runtime.InteropServices.RuntimeInformation.OSArchitecture switch
        {
            System.Runtime.InteropServices.Architecture.Arm64 => "arm64",
            System.Runtime.InteropServices.Architecture.Arm => "arm",
            _ => "amd64",
        };
        var config = System.Text.Encoding.UTF8.GetBytes(
            "{\"architecture\":\"" + architecture + "\",\"os\":\"linux\",\"config\":{},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]},\"history\":[]}");
        var configName = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(config)) + ".json";
        var manifest = DockerArchiveManifest.ToBytes([new DockerArchiveManifest(configName, [EmptyImageReference], [])]);
        try
        {
            return await LoadConfigArchiveAsync([(configName, config), (DockerArchiveManifest.FileName, manifest)], cancellationToken).ConfigureAwait(false) is null;
        }
        catch (DockerApiException)
        {
            return false;
        }
    }

    /// <summary>
    /// Loads a docker-archive of configs and manifest only (every layer it names is already in the engine, so
    /// none is sent). Returns the first error the load stream reported, or null.
    /// </summary>
    private async Task<string?> LoadConfigArchiveAsync(IReadOnlyList<(string Name, byte[] Bytes)> files, CancellationToken cancellationToken)
    {
        using var archive = new MemoryStream();
        var writer = new TarArchiveWriter(archive, DateTimeOffset.UtcNow);
        foreach (var (name, bytes) in files) writer.AddFile(name, bytes);
        writer.Finish();
        archive.Position = 0;
        string? error = null;
        var report = new SyncProgress<JSONMessage>(m => error ??= m.Error?.Message);
        await Client.Images.LoadImageAsync(new ImageLoadParameters { Quiet = true }, archive, report, cancellationToken).ConfigureAwait(false);
        return error;
    }

    public Task<string> CreateContainerAsync(ContainerSpec spec, CancellationToken cancellationToken) =>
        Call("create a build container", async () =>
        {
            ArgumentNullException.ThrowIfNull(spec);
            var c = spec.Config;
            var p = new CreateContainerParameters
            {
                Image = spec.Image,
                Name = spec.Name,
                User = c.User ?? "",
                Env = [.. c.Env ?? []],
                Cmd = c.Cmd?.ToList()!,
                Entrypoint = c.Entrypoint?.ToList()!,
                WorkingDir = c.WorkingDir ?? "",
                ExposedPorts = DockerConfigs.Keys(c.ExposedPorts),
                Volumes = DockerConfigs.Keys(c.Volumes),
                Labels = DockerConfigs.Labels(c.Labels),
                Healthcheck = DockerConfigs.ToDocker(c.Healthcheck)!,
                StopSignal = c.StopSignal ?? "",
                Shell = c.Shell?.ToList(),
                OnBuild = c.OnBuild?.ToList(),
                AttachStdout = true,
                AttachStderr = true,
                HostConfig = new HostConfig
                {
                    NetworkMode = spec.NetworkMode!,
                    Tmpfs = spec.Tmpfs.Count == 0 ? null! : spec.Tmpfs.Distinct(StringComparer.Ordinal).ToDictionary(p => p, _ => ""),
                },
            };
            var response = await Client.Containers.CreateContainerAsync(p, cancellationToken).ConfigureAwait(false);
            return response.ID;
        });

    public Task<Task> AttachAsync(string containerId, Action<ReadOnlyMemory<byte>> onOutput, CancellationToken cancellationToken) =>
        Call("attach to a build container", async () =>
        {
            var stream = await Client.Containers.AttachContainerAsync(containerId,
                new ContainerAttachParameters { Stream = true, Stdout = true, Stderr = true }, cancellationToken).ConfigureAwait(false);
            return Pump(stream, onOutput, cancellationToken);
        });

    private static async Task Pump(MultiplexedStream stream, Action<ReadOnlyMemory<byte>> onOutput, CancellationToken cancellationToken)
    {
        using (stream)
        {
            var buffer = new byte[16384];
            while (true)
            {
                var read = await stream.ReadOutputAsync(buffer, 0, buffer.Length, cancellationToken).ConfigureAwait(false);
                if (read.EOF) break;
                if (read.Count > 0) onOutput(buffer.AsMemory(0, read.Count));
            }
        }
    }

    public Task StartContainerAsync(string containerId, CancellationToken cancellationToken) =>
        Call("start a build container", () => Client.Containers.StartContainerAsync(containerId, new ContainerStartParameters(), cancellationToken));

    public Task<long> WaitContainerAsync(string containerId, CancellationToken cancellationToken) =>
        Call("wait for a build container", async () =>
        {
            var r = await Client.Containers.WaitContainerAsync(containerId, cancellationToken).ConfigureAwait(false);
            return r.StatusCode;
        });

    public Task<string> CommitAsync(string containerId, ContainerConfig config, string? author, CancellationToken cancellationToken) =>
        Call("commit a build step", async () =>
        {
            ArgumentNullException.ThrowIfNull(config);
            var p = new CommitContainerChangesParameters
            {
                ContainerID = containerId,
                Author = author,
                Pause = false,
                User = config.User ?? "",
                Env = [.. config.Env ?? []],
                Cmd = config.Cmd?.ToList()!,
                Entrypoint = config.Entrypoint?.ToList()!,
                WorkingDir = config.WorkingDir ?? "",
                ExposedPorts = DockerConfigs.Keys(config.ExposedPorts),
                Volumes = DockerConfigs.Keys(config.Volumes),
                Labels = DockerConfigs.Labels(config.Labels),
                Healthcheck = DockerConfigs.ToDocker(config.Healthcheck)!,
                StopSignal = config.StopSignal ?? "",
                Shell = config.Shell?.ToList(),
                OnBuild = config.OnBuild?.ToList(),
            };
            var r = await Client.Images.CommitContainerChangesAsync(p, cancellationToken).ConfigureAwait(false);
            return r.ID;
        });

    public Task PutArchiveAsync(string containerId, string directory, Stream tar, CancellationToken cancellationToken) =>
        Call($"copy files into a build container at {directory}", () =>
            Client.Containers.ExtractArchiveToContainerAsync(containerId, new CopyToContainerParameters { Path = directory }, tar, cancellationToken));

    public Task<Stream> GetArchiveAsync(string containerId, string path, CancellationToken cancellationToken) =>
        Call($"read {path} from a container", async () =>
        {
            var r = await Client.Containers.GetArchiveFromContainerAsync(containerId, new ContainerPathStatParameters { Path = path }, false, cancellationToken).ConfigureAwait(false);
            using var response = r.Stream ?? throw new EngineException($"the engine sent no archive for {path}");
            // Spooled to a temp file: a tar reader straight on the response stream sees it end early (measured
            // with Docker.DotNet.Enhanced 4.3 over a unix socket), and the caller should not hold the response open.
            var spool = new FileStream(Path.GetTempFileName(), FileMode.Open, FileAccess.ReadWrite, FileShare.None, 81920, FileOptions.DeleteOnClose);
            try
            {
                await response.CopyToAsync(spool, cancellationToken).ConfigureAwait(false);
                spool.Position = 0;
                return (Stream)spool;
            }
            catch
            {
                await spool.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        });

    public Task<PathStat?> StatPathAsync(string containerId, string path, CancellationToken cancellationToken) =>
        Call($"stat {path} in a container", async () =>
        {
            try
            {
                var r = await Client.Containers.GetArchiveFromContainerAsync(containerId, new ContainerPathStatParameters { Path = path }, true, cancellationToken).ConfigureAwait(false);
                r.Stream?.Dispose();
                var s = r.Stat;
                return s is null ? null : new PathStat(s.Name, s.Size, (uint)s.Mode, string.IsNullOrEmpty(s.LinkTarget) ? null : s.LinkTarget);
            }
            catch (DockerContainerNotFoundException)
            {
                return null;
            }
            catch (DockerApiException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
            {
                return null;
            }
        });

    public Task RemoveContainerAsync(string containerId, CancellationToken cancellationToken) =>
        Call("remove a build container", async () =>
        {
            try
            {
                await Client.Containers.RemoveContainerAsync(containerId, new ContainerRemoveParameters { Force = true, RemoveVolumes = true }, cancellationToken).ConfigureAwait(false);
            }
            catch (DockerContainerNotFoundException)
            {
                // Already gone.
            }
            catch (DockerApiException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
            {
                // Already gone.
            }
            return true;
        });

    public Task TagImageAsync(string imageId, string reference, CancellationToken cancellationToken) =>
        Call($"tag {reference}", () =>
        {
            var (name, tag) = SplitTag(reference);
            return Client.Images.TagImageAsync(imageId, new ImageTagParameters { RepositoryName = name, Tag = tag }, cancellationToken);
        });

    public Task<string> ReplaceStepConfigAsync(string imageId, string? parentId, IReadOnlyList<string> env, IReadOnlyList<string> createdBy, CancellationToken cancellationToken) =>
        Call("record a RUN step's image without its build args", async () =>
        {
            ArgumentNullException.ThrowIfNull(env);
            ArgumentNullException.ThrowIfNull(createdBy);
            // The commit endpoint answers with the full ID; anything else is looked up.
            var id = imageId.StartsWith("sha256:", StringComparison.Ordinal) && imageId.Length == 71
                ? imageId
                : (await Client.Images.InspectImageAsync(imageId, cancellationToken).ConfigureAwait(false)).ID;
            var parent = parentId;
            var raw = await RawConfigsAsync(parent is null ? [id] : [id, parent], cancellationToken).ConfigureAwait(false);

            // The committed config, changed where docker's builder differs: Env, and the command it records.
            var root = JsonNode.Parse(raw[id])?.AsObject() ?? throw new EngineException($"the config of {imageId} is not a JSON object");
            var config = root["config"] as JsonObject ?? throw new EngineException($"the config of {imageId} has no container config");
            config["Env"] = Strings(env);
            if (root["container_config"] is JsonObject containerConfig)
            {
                containerConfig["Env"] = Strings(env);
                containerConfig["Cmd"] = Strings(createdBy);
                containerConfig["Entrypoint"] = null;
            }
            if (root["history"] is JsonArray { Count: > 0 } history && history[^1] is JsonObject last)
                last["created_by"] = string.Join(' ', createdBy);
            var bytes = Utf8(root);
            var newHex = Convert.ToHexStringLower(SHA256.HashData(bytes));

            // A docker-archive of configs only: the engine has every layer, so none is sent. The parent's own
            // config goes along unchanged (it loads as the same image) so that the parent link is kept.
            var manifest = new List<DockerArchiveManifest>();
            var files = new List<(string Name, byte[] Bytes)>();
            if (parent is not null && raw.TryGetValue(parent, out var parentBytes))
            {
                var parentHex = parent["sha256:".Length..];
                files.Add((parentHex + ".json", parentBytes));
                manifest.Add(new DockerArchiveManifest(parentHex + ".json", [], LayerFiles(parentBytes)));
            }
            files.Add((newHex + ".json", bytes));
            manifest.Add(new DockerArchiveManifest(newHex + ".json", [], LayerFiles(bytes), raw.ContainsKey(parent ?? "") ? parent : null));
            files.Add((DockerArchiveManifest.FileName, DockerArchiveManifest.ToBytes(manifest)));
            var error = await LoadConfigArchiveAsync(files, cancellationToken).ConfigureAwait(false);
            if (error is not null) throw new EngineException($"loading the step's image failed: {error}");
            var newId = "sha256:" + newHex;
            if (newId != id)
                await Client.Images.DeleteImageAsync(id, new ImageDeleteParameters { Force = false, NoPrune = true }, cancellationToken).ConfigureAwait(false);
            return newId;
        });

    public Task<bool> RemoveImageAsync(string reference, CancellationToken cancellationToken) =>
        Call($"remove the image {reference}", async () =>
        {
            try
            {
                await Client.Images.DeleteImageAsync(reference, new ImageDeleteParameters { Force = false, NoPrune = true }, cancellationToken).ConfigureAwait(false);
                return true;
            }
            catch (DockerImageNotFoundException)
            {
                return false;
            }
            catch (DockerApiException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
            {
                return false;
            }
        });

    public Task<string> ReplaceOnBuildAsync(string imageId, IReadOnlyList<string>? onBuild, IReadOnlyList<string> tags, CancellationToken cancellationToken) =>
        Call("load an image with other ONBUILD triggers", async () =>
        {
            ArgumentNullException.ThrowIfNull(tags);
            if (!await CanReplaceStepConfigAsync(cancellationToken).ConfigureAwait(false))
                throw new EngineException("changing an image's ONBUILD triggers needs an engine with the graph-driver image store (it loads a config without its layers)");
            var id = imageId.StartsWith("sha256:", StringComparison.Ordinal) && imageId.Length == 71
                ? imageId
                : (await Client.Images.InspectImageAsync(imageId, cancellationToken).ConfigureAwait(false)).ID;
            var raw = await RawConfigsAsync([id], cancellationToken).ConfigureAwait(false);
            var root = JsonNode.Parse(raw[id])?.AsObject() ?? throw new EngineException($"the config of {imageId} is not a JSON object");
            if (root["config"] is not JsonObject config)
            {
                config = [];
                root["config"] = config;
            }
            config["OnBuild"] = onBuild is null ? null : Strings(onBuild);
            var bytes = Utf8(root);
            var hex = Convert.ToHexStringLower(SHA256.HashData(bytes));
            var repoTags = tags.Select(t => t.Contains('@', StringComparison.Ordinal) || t.LastIndexOf(':') > t.LastIndexOf('/') ? t : t + ":latest").ToList();
            var manifest = DockerArchiveManifest.ToBytes([new DockerArchiveManifest(hex + ".json", repoTags, LayerFiles(bytes))]);
            var error = await LoadConfigArchiveAsync([(hex + ".json", bytes), (DockerArchiveManifest.FileName, manifest)], cancellationToken).ConfigureAwait(false);
            if (error is not null) throw new EngineException($"loading the image with its ONBUILD triggers changed failed: {error}");
            return "sha256:" + hex;
        });

    private static JsonArray Strings(IEnumerable<string> values) => new([.. values.Select(v => (JsonNode?)JsonValue.Create(v))]);

    /// <summary>The layer paths a docker-archive manifest lists for a config (never read: the engine has the layers).</summary>
    private static List<string> LayerFiles(byte[] config) =>
        JsonNode.Parse(config)?["rootfs"]?["diff_ids"]?.AsArray().Select(d => d!.GetValue<string>()["sha256:".Length..] + "/layer.tar").ToList() ?? [];

    /// <summary>
    /// The exact config bytes of images (by ID): from the engine's image store when it is on this machine
    /// (<c>&lt;root&gt;/image/&lt;driver&gt;/imagedb</c>, checked against the ID), else from a save of the
    /// images (which also sends their layers: much slower).
    /// </summary>
    private async Task<Dictionary<string, byte[]>> RawConfigsAsync(IReadOnlyList<string> ids, CancellationToken cancellationToken)
    {
        var found = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        _imageDb ??= await ImageDbAsync(cancellationToken).ConfigureAwait(false);
        foreach (var id in ids)
        {
            var file = Path.Combine(_imageDb, id["sha256:".Length..]);
            try
            {
                if (File.Exists(file) && await File.ReadAllBytesAsync(file, cancellationToken).ConfigureAwait(false) is var bytes && HashesTo(bytes, id))
                    found[id] = bytes;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Not readable here: the save below gives it.
            }
        }
        var missing = ids.Where(id => !found.ContainsKey(id)).ToArray();
        if (missing.Length == 0) return found;
        using var save = await Client.Images.SaveImagesAsync(missing, cancellationToken).ConfigureAwait(false);
        var reader = new LayerTool.Image.Layers.Tar.LayerTarReader(save, leaveOpen: true, source: "the engine's save", namesAsWritten: true);
        await using var readerScope = reader.ConfigureAwait(false);
        while (await reader.ReadNextAsync(cancellationToken).ConfigureAwait(false) is { } entry)
        {
            if (entry.Type != LayerTool.Image.Layers.LayerEntryType.RegularFile) continue;
            // Docker ≤ 24 names a config <hex>.json; the OCI layout of later versions keeps it in blobs/sha256/<hex>.
            var path = entry.Name;
            var name = path.EndsWith(".json", StringComparison.Ordinal) ? path[..^5]
                : path.StartsWith("blobs/sha256/", StringComparison.Ordinal) ? path["blobs/sha256/".Length..] : null;
            var id = name is null ? null : missing.FirstOrDefault(m => m == "sha256:" + name);
            if (id is null) continue;
            using var buffer = new MemoryStream();
            await reader.Content.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (HashesTo(buffer.ToArray(), id)) found[id] = buffer.ToArray();
        }
        return found.ContainsKey(ids[0]) ? found : throw new EngineException($"cannot read the config of {ids[0]}");
    }

    private static bool HashesTo(byte[] bytes, string id) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes)) == id;

    private async Task<string> ImageDbAsync(CancellationToken cancellationToken)
    {
        var info = await Client.System.GetSystemInfoAsync(cancellationToken).ConfigureAwait(false);
        return Path.Combine(info.DockerRootDir ?? "", "image", info.Driver ?? "", "imagedb", "content", "sha256");
    }

    public Task<bool> CanReplaceStepConfigAsync(CancellationToken cancellationToken) =>
        Call("read the engine's info", async () =>
        {
            if (_graphDriverStore is { } known) return known;
            var info = await Client.System.GetSystemInfoAsync(cancellationToken).ConfigureAwait(false);
            // The containerd image store names images by manifest digest and wants layer blobs in a load.
            _graphDriverStore = Images.DockerImageEngine.StoreKindFrom(info.DriverStatus) == Images.ImageStoreKind.GraphDriver;
            return _graphDriverStore.Value;
        });

    /// <summary>A JSON node's compact UTF-8 bytes (written by hand: reflection-free, the tool runs as Native AOT).</summary>
    private static byte[] Utf8(JsonNode node)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer)) node.WriteTo(writer);
        return buffer.WrittenSpan.ToArray();
    }

    private static (string Name, string Tag) SplitTag(string reference)
    {
        var at = reference.IndexOf('@', StringComparison.Ordinal);
        if (at >= 0) return (reference[..at], reference[(at + 1)..]);
        var slash = reference.LastIndexOf('/');
        var colon = reference.LastIndexOf(':');
        return colon > slash ? (reference[..colon], reference[(colon + 1)..]) : (reference, "latest");
    }

    private static async Task Call(string what, Func<Task> action) =>
        await Call(what, async () => { await action().ConfigureAwait(false); return true; }).ConfigureAwait(false);

    /// <summary>Runs an engine call; a lost connection or a refusal becomes an <see cref="EngineException"/> naming what was being done.</summary>
    private static async Task<T> Call<T>(string what, Func<Task<T>> action)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (EngineException)
        {
            throw;
        }
        catch (DockerApiException e)
        {
            throw new EngineException($"the engine refused to {what}: {EngineErrors.Message(e)}", e);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or SocketException or TimeoutException)
        {
            throw new EngineException($"lost the Docker engine while trying to {what}: {EngineErrors.Cause(e)}", e);
        }
    }


    /// <summary>An IProgress that runs the callback inline (Progress&lt;T&gt; posts to the thread pool, out of order).</summary>
    private sealed class SyncProgress<T>(Action<T> action) : IProgress<T>
    {
        public void Report(T value) => action(value);
    }
}
