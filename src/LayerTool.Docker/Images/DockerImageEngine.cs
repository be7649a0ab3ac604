using System.Net;
using Docker.DotNet;
using Docker.DotNet.Models;
using LayerTool.Docker.Sweep;

namespace LayerTool.Docker.Images;

/// <summary>
/// <see cref="IImageEngine"/> over the Docker Engine API (Docker.DotNet.Enhanced). Containers it creates
/// for exports are named <c>layertool-export-ID</c> (ID names this process, <see cref="ProcessOwner.NewId"/>) and
/// carry <c>layertool.export=1</c> plus the labels the caller gives (the tests' <c>layertool.test=1</c>).
/// </summary>
public sealed class DockerImageEngine : IImageEngine
{
    /// <summary>The label every export container carries.</summary>
    public const string ExportLabel = "layertool.export";

    private readonly DockerConnection _connection;
    private readonly IReadOnlyDictionary<string, string> _labels;

    public DockerImageEngine(DockerConnection connection, IReadOnlyDictionary<string, string>? containerLabels = null)
    {
        ArgumentNullException.ThrowIfNull(connection);
        _connection = connection;
        var labels = new Dictionary<string, string>(StringComparer.Ordinal) { [ExportLabel] = "1" };
        if (containerLabels is not null)
            foreach (var (k, v) in containerLabels) labels[k] = v;
        _labels = labels;
    }

    private DockerClient Client => _connection.Client;

    public async Task<ImageStoreKind> GetStoreKindAsync(CancellationToken cancellationToken)
    {
        var info = await Call("read the engine's info", () => Client.System.GetSystemInfoAsync(cancellationToken), cancellationToken).ConfigureAwait(false);
        return StoreKindFrom(info.DriverStatus);
    }

    /// <summary>The store named by <c>/info</c>'s DriverStatus pairs.</summary>
    public static ImageStoreKind StoreKindFrom(IEnumerable<string[]>? driverStatus)
    {
        foreach (var pair in driverStatus ?? [])
        {
            if (pair.Length >= 2 && string.Equals(pair[0], "driver-type", StringComparison.OrdinalIgnoreCase)
                && string.Equals(pair[1], "io.containerd.snapshotter.v1", StringComparison.Ordinal))
                return ImageStoreKind.Containerd;
        }
        return ImageStoreKind.GraphDriver;
    }

    public async Task<EngineImage?> TryInspectImageAsync(string reference, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(reference);
        ImageInspectResponse r;
        try
        {
            r = await Call($"inspect image {reference}", () => Client.Images.InspectImageAsync(reference, cancellationToken), cancellationToken).ConfigureAwait(false);
        }
        catch (EngineException e) when (e.InnerException is DockerImageNotFoundException
                                            || (e.InnerException as DockerApiException)?.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
        return EngineImage.From(r);
    }

    public async Task<Stream> SaveImageAsync(string reference, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(reference);
        // The engine refuses to save an image without layers ("empty export - not implemented"): its archive is written here.
        var image = await Call($"inspect image {reference}", () => Client.Images.InspectImageAsync(reference, cancellationToken), cancellationToken, reference)
            .ConfigureAwait(false);
        if ((image.RootFS?.Layers?.Count ?? 0) == 0)
        {
            var history = await Call($"read the history of image {reference}", () => Client.Images.GetImageHistoryAsync(image.ID, cancellationToken),
                cancellationToken, reference).ConfigureAwait(false);
            return EmptyImageSave.Archive(image, history);
        }
        var body = await Call($"save image {reference}", () => Client.Images.SaveImageAsync(reference, cancellationToken), cancellationToken, reference)
            .ConfigureAwait(false);
        return new EngineStream(body, cancellationToken);
    }

    public async Task<T> ExportImageFilesystemAsync<T>(string imageId, Func<Stream, CancellationToken, Task<T>> read, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(imageId);
        ArgumentNullException.ThrowIfNull(read);
        var create = new CreateContainerParameters
        {
            Image = imageId,
            // Never started: the command only has to exist so that images without CMD can be created.
            Cmd = ["/layertool-export-never-started"],
            Entrypoint = [],
            Labels = new Dictionary<string, string>(_labels, StringComparer.Ordinal),
            NetworkDisabled = true,
            HostConfig = new HostConfig { NetworkMode = "none" },
        };
        // The name carries this process (Sweep/ProcessOwner): if it is killed before the removal below, the next
        // LayerTool run on this machine sees that the owner is gone and removes the container (Sweep/Sweeper).
        var name = Sweeper.ExportPrefix + ProcessOwner.NewId();
        create.Name = name;
        string? id = null;
        try
        {
            // A create cancelled in flight may still be carried out by the engine, and then nothing here knows the
            // container's ID: the create gets a short grace after cancellation to answer, and the removal falls back
            // to the name.
            using (var createToken = new CancellationTokenSource())
            using (cancellationToken.UnsafeRegister(static state => ((CancellationTokenSource)state!).CancelAfter(CreateGrace), createToken))
            {
                id = (await Call($"create a container from image {imageId} to export its filesystem",
                    () => Client.Containers.CreateContainerAsync(create, createToken.Token), createToken.Token, imageId).ConfigureAwait(false)).ID;
            }
            cancellationToken.ThrowIfCancellationRequested();
            var stream = new EngineStream(await Call($"export the filesystem of image {imageId}",
                () => Client.Containers.ExportContainerAsync(id, cancellationToken), cancellationToken).ConfigureAwait(false), cancellationToken);
            await using (stream.ConfigureAwait(false))
            {
                return await read(stream, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            await RemoveContainerQuietlyAsync(id, name).ConfigureAwait(false);
        }
    }

    /// <summary>How long a container create may still take once the caller cancelled (it usually answers in
    /// milliseconds; an ID in hand makes the removal certain).</summary>
    private static readonly TimeSpan CreateGrace = TimeSpan.FromSeconds(1);

    /// <summary>How long the removal of an export container may take (not the caller's token: the container must go
    /// also when the caller gave up; what is left past this, the next run's sweep removes).</summary>
    private static readonly TimeSpan RemoveTimeout = TimeSpan.FromSeconds(10);

    private async Task RemoveContainerQuietlyAsync(string? id, string name)
    {
        using var timeout = new CancellationTokenSource(RemoveTimeout);
        try
        {
            if (id is not null)
            {
                await RemoveContainerAsync(id, timeout.Token).ConfigureAwait(false);
                return;
            }
            // The create's answer never came: the engine may have made the container, or be making it still.
            for (var attempt = 0; attempt < 3; attempt++)
            {
                if (attempt > 0) await Task.Delay(250, timeout.Token).ConfigureAwait(false);
                if (await RemoveContainerAsync(name, timeout.Token).ConfigureAwait(false)) return;
            }
        }
        catch (Exception e) when (e is DockerApiException or HttpRequestException or IOException or TimeoutException or OperationCanceledException)
        {
            // Left for the sweep of the next run (the name says whose it is); the first failure is the one reported.
        }
    }

    /// <summary>Removes a container by ID or name; false when there was none.</summary>
    private async Task<bool> RemoveContainerAsync(string idOrName, CancellationToken cancellationToken)
    {
        try
        {
            await Client.Containers.RemoveContainerAsync(idOrName, new ContainerRemoveParameters { Force = true, RemoveVolumes = true }, cancellationToken)
                .ConfigureAwait(false);
            return true;
        }
        catch (DockerContainerNotFoundException)
        {
            return false;
        }
    }

    public async Task<IReadOnlyList<string>> LoadImageAsync(Stream archive, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(archive);
        var messages = new MessageCollector();
        await Call("load an image archive",
            async () =>
            {
                await Client.Images.LoadImageAsync(new ImageLoadParameters { Quiet = true }, archive, messages, cancellationToken).ConfigureAwait(false);
                return true;
            }, cancellationToken).ConfigureAwait(false);
        var error = messages.Error;
        if (error is not null) throw new EngineException($"the engine refused to load the image: {error}");
        return messages.Lines;
    }

    public async Task TagImageAsync(string image, string tag, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(image);
        ArgumentException.ThrowIfNullOrWhiteSpace(tag);
        var (repository, tagPart) = SplitTag(tag);
        await Call($"tag image {image} as {tag}", async () =>
        {
            await Client.Images.TagImageAsync(image, new ImageTagParameters { RepositoryName = repository, Tag = tagPart }, cancellationToken).ConfigureAwait(false);
            return true;
        }, cancellationToken, image).ConfigureAwait(false);
    }

    /// <summary>Splits <c>repo[:tag]</c> at the colon after the last slash (a registry port is not a tag).</summary>
    public static (string Repository, string Tag) SplitTag(string reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        if (reference.Contains('@', StringComparison.Ordinal))
            throw new EngineException($"cannot tag as '{reference}': a tag cannot hold a digest");
        var slash = reference.LastIndexOf('/');
        var colon = reference.LastIndexOf(':');
        return colon > slash ? (reference[..colon], reference[(colon + 1)..]) : (reference, "latest");
    }

    public async Task RemoveImageAsync(string reference, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(reference);
        try
        {
            await Call($"remove image {reference}", () => Client.Images.DeleteImageAsync(reference, new ImageDeleteParameters { Force = true }, cancellationToken),
                cancellationToken).ConfigureAwait(false);
        }
        catch (EngineException e) when (e.InnerException is DockerImageNotFoundException
                                            || (e.InnerException as DockerApiException)?.StatusCode == HttpStatusCode.NotFound)
        {
        }
    }

    /// <summary>Runs one engine call and turns its failures into <see cref="EngineException"/>s that say
    /// what LayerTool was doing ("no such image: X" for a 404 about <paramref name="image"/>).</summary>
    private async Task<T> Call<T>(string doing, Func<Task<T>> call, CancellationToken cancellationToken, string? image = null)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (DockerApiException e)
        {
            if (e.StatusCode == HttpStatusCode.NotFound && image is not null)
                throw new EngineException($"no such image: {image}", e);
            throw new EngineException($"cannot {doing}: {EngineErrors.Message(e)}", e);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or TimeoutException or System.Net.Sockets.SocketException or OperationCanceledException)
        {
            throw new EngineException($"cannot {doing}: lost the Docker engine at {_connection.EndpointDescription}: {EngineErrors.Cause(e)}", e);
        }
    }

    /// <summary>Collects a JSON message stream synchronously (a <see cref="Progress{T}"/> would post to the
    /// thread pool and could lose the last error).</summary>
    private sealed class MessageCollector : IProgress<JSONMessage>
    {
        private readonly List<string> _lines = [];
        private readonly Lock _gate = new();

        public string? Error { get; private set; }

        public IReadOnlyList<string> Lines
        {
            get
            {
                lock (_gate) return [.. _lines];
            }
        }

        public void Report(JSONMessage value)
        {
            lock (_gate)
            {
                if (value.Error is { Message: { Length: > 0 } m }) Error ??= m.Trim();
                else if (!string.IsNullOrWhiteSpace(value.Stream)) _lines.Add(value.Stream.Trim());
                else if (!string.IsNullOrWhiteSpace(value.Status) && value.Progress is null) _lines.Add(value.Status.Trim());
            }
        }
    }
}
