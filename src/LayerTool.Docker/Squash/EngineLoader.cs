using LayerTool.Docker.Images;
using LayerTool.Docker.Sweep;
using LayerTool.Image;
using LayerTool.Image.Formats;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Squash;

namespace LayerTool.Docker.Squash;

/// <summary>
/// The engine as the squash's image sink: every route a squashed image takes into an engine, and the check of
/// what the engine loaded before anything is tagged. On a final image that can be read twice (the overlay2 fast
/// path) the load overlaps the squash: through a named pipe the engine reads the new layer from
/// (<see cref="LoadPipe"/>), else inside a partial archive streamed as the layer is written. Otherwise the
/// verified result is loaded afterwards: a partial archive (the engine has the base's layers) first, a full
/// one (with the base's layers from its save) when the engine refuses it.
/// </summary>
internal sealed class EngineLoader(IImageEngine engine, EngineSquashSettings settings)
{
    private readonly IImageEngine _engine = engine;
    private readonly EngineSquashSettings _settings = settings;

    /// <summary>
    /// Squashes <paramref name="spec"/> while the engine loads the result, when <paramref name="source"/> can be read
    /// twice: the verified squash and the loaded image's ID; no squash when the caller must squash and load the
    /// usual way (<c>PartialRefused</c>: the engine turned a partial archive down, so skip straight to a full one).
    /// </summary>
    public async Task<(SquashedImage? Squashed, string? LoadedId, bool PartialRefused)> SquashWhileLoadingAsync(SquashSpec spec, IFinalImageSource source,
        IProgress<long>? bytes, IProgress<SquashProgress>? progress, CancellationToken cancellationToken)
    {
        if (!source.Rereadable) return (null, null, false);
        var piped = _settings.LoadThroughPipe && source.EngineTempDirectory is { } engineTemp
            ? await PipedAsync(spec, engineTemp, bytes, progress, cancellationToken).ConfigureAwait(false)
            : null;
        return piped ?? await StreamedAsync(spec, bytes, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The squashed config over the base's real layers (for a full archive).</summary>
    public static ComposedImage Compose(SquashedImage squashed, ArchiveImage baseImage)
    {
        var layers = new List<ILayer>(baseImage.Layers);
        if (squashed.NewLayer is not null) layers.Add(squashed.NewLayer);
        return new ComposedImage(squashed.Config, layers);
    }

    /// <summary>
    /// The squash with its load overlapped. The archive's head goes out at once; a first, metadata-only pass of
    /// the same diff gives the layer's exact size (its tar header comes next); the layer follows as it is
    /// written, and the config and manifest only once the squash is verified. A failed squash cuts the upload
    /// short, and an engine loads nothing from an archive that ends early. Returns the verified squash and the
    /// loaded image's ID; or no squash when the caller must squash again the usual way (into a file): the engine
    /// refused the partial archive (<c>PartialRefused</c>), or the layer came out other than measured.
    /// </summary>
    private async Task<(SquashedImage? Squashed, string? LoadedId, bool PartialRefused)> StreamedAsync(SquashSpec spec,
        IProgress<long>? bytes, CancellationToken cancellationToken)
    {
        var upload = new ArchiveUpload();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var loading = StartLoad(upload, stop.Token);
        SquashedImage? squashed = null;
        try
        {
            // The head goes out first: the engine starts its unpacking process while the layer is measured.
            var layer = upload.Writer;
            await layer.WriteAsync(StreamedDockerArchive.Head(DateTimeOffset.UnixEpoch), cancellationToken).ConfigureAwait(false);
            await layer.FlushAsync(cancellationToken).ConfigureAwait(false);
            long size;
            using (var measured = await spec.WriteLayer(spec.BaseIndex, Stream.Null, new LayerDiffOptions
            {
                MeasureOnly = true,
                ClampTime = spec.Timestamp,
                TempDirectory = spec.TempDirectory,
                ReopenContent = spec.ReopenContent,
            }, cancellationToken).ConfigureAwait(false))
            {
                size = measured.Size;
                if (measured.Entries == 0)
                {
                    // Only the config changed: nothing to stream, and a truncated archive loads nothing.
                    await AbandonAsync(upload, stop, loading).ConfigureAwait(false);
                    return (null, null, false);
                }
            }
            await layer.WriteAsync(StreamedDockerArchive.LayerHeader(size, DateTimeOffset.UnixEpoch), cancellationToken).ConfigureAwait(false);
            squashed = await ImageSquasher.SquashAsync(spec with { LayerStream = layer }, bytes, cancellationToken).ConfigureAwait(false);
            if (squashed.NewLayer is null || squashed.LayerSize != size)
            {
                // The layer directories changed under the squash: send nothing more, and squash again from scratch.
                await AbandonAsync(upload, stop, loading).ConfigureAwait(false);
                squashed.Dispose();
                return (null, null, false);
            }
            await layer.WriteAsync(StreamedDockerArchive.Suffix(squashed, squashed.BaseLayerCount, size, DateTimeOffset.UnixEpoch), cancellationToken)
                .ConfigureAwait(false);
            await upload.CompleteAsync().ConfigureAwait(false);
            await loading.ConfigureAwait(false);
            if (await LoadedIdAsync(squashed.ImageId.ToString(), ExpectedLayers(squashed), cancellationToken).ConfigureAwait(false) is { } id)
                return (squashed, id, false);
            // The engine loaded something else: squash again into a file and load a full archive, as LoadAsync does.
            squashed.Dispose();
            return (null, null, true);
        }
        catch (Exception e) when (e is EngineException or ArchiveUpload.ClosedException && !cancellationToken.IsCancellationRequested)
        {
            // The engine turned the partial archive down (the upload stops taking bytes, or the load fails):
            // squash again into a file and load a full archive, as LoadAsync does.
            await AbandonAsync(upload, stop, loading).ConfigureAwait(false);
            squashed?.Dispose();
            return (null, null, true);
        }
        catch
        {
            await AbandonAsync(upload, stop, loading).ConfigureAwait(false);
            squashed?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The squash loaded through a pipe (<see cref="LoadPipe"/>). The archive's head, with the pipe as the new
    /// layer, goes out at once, and the engine makes the pipe while LayerTool squashes a first time, in full and
    /// verified, into no file: that gives the diffID the config must carry before the engine reads the layer.
    /// The config and manifest then go out; the engine opens the pipe when it reaches the new layer, and the
    /// same diff, run again, is written into it while the engine applies it (and checks its diffID). Returns
    /// what <see cref="StreamedAsync"/> does, or null when the pipe cannot be used here (it never
    /// appeared, or the second pass differed): the caller then streams the layer inside the archive.
    /// </summary>
    private async Task<(SquashedImage? Squashed, string? LoadedId, bool PartialRefused)?> PipedAsync(SquashSpec spec, string engineTemp,
        IProgress<long>? bytes, IProgress<SquashProgress>? progress, CancellationToken cancellationToken)
    {
        var directory = LoadPipe.NewDirectoryName();
        // A load left waiting on its pipe by a LayerTool killed at the wrong moment is ended first.
        Sweeper.ReleasePipes(engineTemp);
        var upload = new ArchiveUpload();
        // Not linked to the caller's token: once the archive is complete the engine goes on with the load whether
        // or not the request is still there, and only the request's end tells that it will never open the pipe.
        // Before that, a cancelled squash cuts the upload short itself (AbandonAsync).
        using var stop = new CancellationTokenSource();
        var importsBefore = LoadPipe.Imports(engineTemp);
        var uploadStarted = DateTime.UtcNow;
        var loading = StartLoad(upload, stop.Token);
        SquashedImage? squashed = null;
        string? sent = null; // the pipe, once the whole archive is sent
        var released = false; // the pipe was opened for the engine (or the load ended without it)
        try
        {
            await upload.Writer.WriteAsync(StreamedDockerArchive.PipedHead(directory, DateTimeOffset.UnixEpoch), cancellationToken).ConfigureAwait(false);
            await upload.Writer.FlushAsync(cancellationToken).ConfigureAwait(false);
            squashed = await ImageSquasher.SquashAsync(spec with { LayerStream = Stream.Null }, bytes, cancellationToken).ConfigureAwait(false);
            if (squashed.NewLayer is null)
            {
                // Only the config changed: no layer to pipe; the caller loads the config over the base's layers.
                await AbandonAsync(upload, stop, loading).ConfigureAwait(false);
                return (squashed, null, false);
            }
            if (await LoadPipe.FindAsync(engineTemp, directory, importsBefore, uploadStarted, loading, _settings.LoadPipeWait, cancellationToken).ConfigureAwait(false) is not { } pipePath)
            {
                // A load that ended already failed (its error is the engine's answer); else the engine unpacks
                // uploads somewhere LayerTool does not see (DOCKER_TMPDIR): stream the layer in the archive.
                if (loading.IsCompleted) await loading.ConfigureAwait(false);
                await AbandonAsync(upload, stop, loading).ConfigureAwait(false);
                squashed.Dispose();
                return null;
            }
            // Whether the engine has the image already (an earlier reproducible squash): a cancelled squash then
            // leaves it; else it removes what the load made. Asked alongside the upload's end, and answered before
            // the pipe opens: the engine cannot make the image before it has read the layer.
            var existing = _engine.TryInspectImageAsync(squashed.ImageId.ToString(), CancellationToken.None);
            await upload.Writer.WriteAsync(StreamedDockerArchive.PipedSuffix(squashed, squashed.BaseLayerCount, directory, DateTimeOffset.UnixEpoch),
                cancellationToken).ConfigureAwait(false);
            await upload.CompleteAsync().ConfigureAwait(false);
            sent = pipePath;

            // From here the engine will open the pipe and wait for a writer: it must get one, whatever happens
            // (EndAsync opens and closes it when this does not get that far).
            var existedBefore = await existing.ConfigureAwait(false) is not null;
            progress?.Report(new SquashProgress("load", 0, null));
            LayerDiffResult? again = null;
            Stream? pipe;
            try
            {
                pipe = await LoadPipe.OpenWriterAsync(pipePath, loading, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                released = true; // opened (and closed, when cancelled), or the load ended: the engine waits for nothing
            }
            if (pipe is not null)
            {
                try
                {
                    await using (pipe.ConfigureAwait(false))
                    {
                        again = await spec.WriteLayer(spec.BaseIndex, pipe, new LayerDiffOptions
                        {
                            ClampTime = spec.Timestamp,
                            TempDirectory = spec.TempDirectory,
                            ReopenContent = spec.ReopenContent,
                            HashWrittenContent = false,
                            HashLayer = false, // the engine checks the diffID of what it reads against the config
                        }, cancellationToken).ConfigureAwait(false);
                    }
                }
                catch (IOException) when (!cancellationToken.IsCancellationRequested)
                {
                    // The engine stopped reading (a broken pipe): its load's error says why, and is handled below.
                    await loading.ConfigureAwait(false);
                    throw;
                }
                // The pipe is closed: the engine has the whole layer.
                again.Dispose();
            }
            await loading.ConfigureAwait(false);
            var id = await LoadedIdAsync(squashed.ImageId.ToString(), ExpectedLayers(squashed), CancellationToken.None).ConfigureAwait(false);
            if (cancellationToken.IsCancellationRequested)
            {
                // Cancelled once the engine had the whole layer: undo the load (nothing was tagged yet).
                if (!existedBefore && id is not null) await _engine.RemoveImageAsync(id, CancellationToken.None).ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
            }
            // No second pass at all (the load ended without opening the pipe) is an engine that had the layer
            // already, from an earlier squash of the same image: it skips loading a layer it has.
            if (again is not null && again.Size != squashed.LayerSize)
            {
                // The second pass wrote other bytes (the layer directories changed), which the engine cannot have
                // taken for the layer (its diffID): squash again.
                squashed.Dispose();
                return null;
            }
            if (id is not null) return (squashed, id, false);
            // The engine loaded something else: squash again into a file and load a full archive, as LoadAsync does.
            squashed.Dispose();
            return (null, null, true);
        }
        catch (Exception e) when (e is EngineException or ArchiveUpload.ClosedException && !cancellationToken.IsCancellationRequested)
        {
            // The engine turned the archive down: squash again into a file and load a full archive, as LoadAsync does.
            await EndAsync(upload, stop, loading, sent, released).ConfigureAwait(false);
            squashed?.Dispose();
            return (null, null, true);
        }
        catch
        {
            await EndAsync(upload, stop, loading, sent, released).ConfigureAwait(false);
            squashed?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Ends a piped load that failed: an upload still going (no <paramref name="sentPipe"/> yet) is cut short; a
    /// complete one, whose pipe was closed early or never written, fails in the engine on its own (an empty or
    /// truncated layer, or its diffID). A pipe not <paramref name="released"/> yet is opened and closed, so the
    /// engine does not wait for it for ever.
    /// </summary>
    private static async Task EndAsync(ArchiveUpload upload, CancellationTokenSource stop, Task loading, string? sentPipe, bool released)
    {
        if (sentPipe is null)
        {
            await AbandonAsync(upload, stop, loading).ConfigureAwait(false);
            return;
        }
        try
        {
            if (!released && await LoadPipe.OpenWriterAsync(sentPipe, loading, CancellationToken.None).ConfigureAwait(false) is { } opened)
                await opened.DisposeAsync().ConfigureAwait(false);
            await loading.ConfigureAwait(false);
        }
        catch (Exception e) when (e is EngineException or OperationCanceledException or IOException or HttpRequestException)
        {
            // Expected: the engine refused what it read from the pipe.
        }
    }

    /// <summary>Starts the load request whose body is <paramref name="upload"/>'s; the task ends with the request
    /// (and a writer still writing then gets <see cref="ArchiveUpload.ClosedException"/>).</summary>
    private Task StartLoad(ArchiveUpload upload, CancellationToken requestToken) => Task.Run(async () =>
    {
        try
        {
            await _engine.LoadImageAsync(upload.Body, requestToken).ConfigureAwait(false);
        }
        finally
        {
            upload.RequestEnded();
        }
    }, CancellationToken.None);

    /// <summary>Cuts an upload short (the engine then loads nothing) and waits for the request to end.</summary>
    private static async Task AbandonAsync(ArchiveUpload upload, CancellationTokenSource stop, Task loading)
    {
        await upload.FailAsync(new OperationCanceledException("the squash did not finish; the upload is abandoned")).ConfigureAwait(false);
        await stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await loading.ConfigureAwait(false);
        }
        catch (Exception e) when (e is EngineException or OperationCanceledException or IOException or HttpRequestException)
        {
            // Expected: the request was cut short on purpose, or had failed already.
        }
    }

    /// <summary>Loads the result, partial archive first; returns the engine's image ID once its layers check out.</summary>
    public async Task<string> LoadAsync(SquashedImage squashed, BaseSave? baseSave, ImageStoreKind store, bool tryPartial,
        CancellationToken cancellationToken)
    {
        var expected = ExpectedLayers(squashed);
        if (tryPartial && baseSave is not null && store == ImageStoreKind.GraphDriver)
        {
            try
            {
                var id = await LoadArchiveAsync(squashed, new ImageWriteOptions
                {
                    Format = ImageArchiveFormat.DockerArchive,
                    OmitLayers = squashed.BaseLayerCount,
                    TemporaryDirectory = _settings.TempDirectory,
                }, squashed.ImageId.ToString(), expected, cancellationToken).ConfigureAwait(false);
                if (id is not null) return id;
            }
            catch (EngineException)
            {
                // The engine refused the partial archive: fall back to a full one below.
            }
        }

        {
            IImage full = baseSave is not null
                ? Compose(squashed, (await baseSave.OpenAsync(cancellationToken).ConfigureAwait(false)).GetImage())
                : squashed;
            var format = store == ImageStoreKind.Containerd ? ImageArchiveFormat.DockerOciArchive : ImageArchiveFormat.DockerArchive;
            var temporaryName = store == ImageStoreKind.Containerd
                ? ImageReference.Parse($"layertool-squash/{squashed.ImageId.Hex[..12]}:loading")
                : (ImageReference?)null;
            var result = await LoadArchiveAsync(full, new ImageWriteOptions
            {
                Format = format,
                Tags = temporaryName is { } t ? [t] : [],
                TemporaryDirectory = _settings.TempDirectory,
            }, temporaryName?.ToString() ?? squashed.ImageId.ToString(), expected, cancellationToken).ConfigureAwait(false);
            if (temporaryName is { } name)
            {
                // The containerd store names images by manifest digest; keep the ID, drop the temporary name.
                var loaded = await _engine.TryInspectImageAsync(name.ToString(), cancellationToken).ConfigureAwait(false);
                if (loaded is not null && result is not null)
                {
                    await _engine.TagImageAsync(loaded.Id, $"layertool-squash/{squashed.ImageId.Hex[..12]}:keep", cancellationToken).ConfigureAwait(false);
                    await _engine.RemoveImageAsync(name.ToString(), cancellationToken).ConfigureAwait(false);
                    result = loaded.Id;
                }
            }
            return result ?? throw new EngineException(
                $"the engine loaded the squashed image but its layers are not the expected ones ({string.Join(", ", expected)})");
        }
    }

    /// <summary>Writes an archive to a temp file, loads it, and returns the image ID if the engine now has
    /// <paramref name="lookup"/> with exactly the <paramref name="expected"/> layers (else null).</summary>
    private async Task<string?> LoadArchiveAsync(IImage image, ImageWriteOptions options, string lookup, IReadOnlyList<string> expected,
        CancellationToken cancellationToken)
    {
        // A docker-archive whose layers are files (the squash's new layer) is sent as it is assembled,
        // reading the layer in place: no second copy of the layer on disk, no second hash of it (measured
        // in docs/design/fast-path.md). The stream is seekable with a known length, so the body goes
        // out with a Content-Length: a pipe (3c1a10b, reverted) made the body chunked and was slower.
        if (ImageArchiveWriter.TryOpenDockerArchive(image, options) is { } direct)
        {
            await using (direct.ConfigureAwait(false))
            {
                await _engine.LoadImageAsync(direct, cancellationToken).ConfigureAwait(false);
            }
            return await LoadedIdAsync(lookup, expected, cancellationToken).ConfigureAwait(false);
        }

        var directory = _settings.TempDirectory ?? Path.GetTempPath();
        var path = Path.Combine(directory, $"layertool-load-{Guid.NewGuid():N}.tar");
        try
        {
            await ImageArchiveWriter.WriteAsync(path, image, options, cancellationToken).ConfigureAwait(false);
            var archive = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan | FileOptions.Asynchronous);
            await using (archive.ConfigureAwait(false))
            {
                await _engine.LoadImageAsync(archive, cancellationToken).ConfigureAwait(false);
            }
            return await LoadedIdAsync(lookup, expected, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>The layers a loaded squash must have: the base's and the new one.</summary>
    private static List<string> ExpectedLayers(SquashedImage squashed) => [.. squashed.Config.DiffIds.Select(d => d.ToString())];

    /// <summary>The engine's ID of <paramref name="lookup"/> if it now has exactly the <paramref name="expected"/> layers, else null.</summary>
    private async Task<string?> LoadedIdAsync(string lookup, IReadOnlyList<string> expected, CancellationToken cancellationToken)
    {
        var loaded = await _engine.TryInspectImageAsync(lookup, cancellationToken).ConfigureAwait(false);
        return loaded is not null && loaded.DiffIds.SequenceEqual(expected, StringComparer.Ordinal) ? loaded.Id : null;
    }
}
