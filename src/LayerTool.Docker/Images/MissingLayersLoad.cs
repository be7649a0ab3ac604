using LayerTool.Image;
using LayerTool.Image.Formats;

namespace LayerTool.Docker.Images;

/// <summary>What <see cref="MissingLayersLoad.LoadAsync"/> did.</summary>
/// <param name="ImageId">The engine's ID of the loaded image.</param>
/// <param name="SentLayers">Layers sent in the archive (the others the engine had).</param>
/// <param name="SentBytes">Stored bytes of the layers sent (as their descriptors give them).</param>
public sealed record MissingLayersLoadResult(string ImageId, int SentLayers, long SentBytes);

/// <summary>
/// Loads an image from anywhere (a registry pull, an archive) into the engine sending only the layers it lacks.
/// The engine's longest chain of the image's layers is found with probe loads of configs naming a prefix of the
/// layers and holding none (on the graph-driver store a load that omits a layer the engine lacks fails, one that
/// omits only layers it has succeeds; each probe image is removed again), then one archive omitting that prefix
/// is loaded, as squash loads its partial archives. The loaded image must have the image's diff IDs; a refused
/// partial archive falls back to the whole image.
/// </summary>
public static class MissingLayersLoad
{
    /// <summary>Loads <paramref name="image"/>, tagged <paramref name="name"/> when given.</summary>
    /// <param name="engine">The engine.</param>
    /// <param name="image">The image; its layers are read only when they must be sent.</param>
    /// <param name="name">The tag to give it (written into the archive), or null.</param>
    /// <param name="tempDirectory">Where the archive is written before the upload; the system temp directory when null.</param>
    /// <param name="cancellationToken">Cancels the load.</param>
    public static async Task<MissingLayersLoadResult> LoadAsync(IImageEngine engine, IImage image, ImageReference? name, string? tempDirectory,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(image);
        var expected = image.Config.DiffIds.Select(d => d.ToString()).ToList();
        var existing = await engine.TryInspectImageAsync(image.Config.Digest.ToString(), cancellationToken).ConfigureAwait(false);
        if (existing is not null && existing.DiffIds.SequenceEqual(expected, StringComparer.Ordinal))
        {
            if (name is { } n)
            {
                await engine.TagImageAsync(existing.Id, n.FamiliarString, cancellationToken).ConfigureAwait(false);
            }

            return new MissingLayersLoadResult(existing.Id, 0, 0);
        }

        var store = await engine.GetStoreKindAsync(cancellationToken).ConfigureAwait(false);
        var omit = 0;
        if (store == ImageStoreKind.GraphDriver)
        {
            var (lo, hi) = (0, image.Layers.Count - 1);
            while (lo < hi)
            {
                var mid = (lo + hi + 1) / 2;
                if (await EngineHasPrefixAsync(engine, image, mid, tempDirectory, cancellationToken).ConfigureAwait(false))
                {
                    lo = mid;
                }
                else
                {
                    hi = mid - 1;
                }
            }

            omit = lo;
        }

        var format = store == ImageStoreKind.Containerd ? ImageArchiveFormat.DockerOciArchive : ImageArchiveFormat.DockerArchive;
        IReadOnlyList<ImageReference> tags = name is { } t ? [t] : [];
        var lookup = name?.ToString() ?? image.Config.Digest.ToString();
        var loadedId = await LoadArchiveAsync(engine, image, new ImageWriteOptions { Format = format, OmitLayers = omit, Tags = tags },
            lookup, expected, tempDirectory, cancellationToken).ConfigureAwait(false);
        if (loadedId is null && omit > 0)
        {
            // The engine refused the partial archive after all: the whole image.
            omit = 0;
            loadedId = await LoadArchiveAsync(engine, image, new ImageWriteOptions { Format = format, Tags = tags },
                lookup, expected, tempDirectory, cancellationToken).ConfigureAwait(false);
        }

        if (loadedId is null)
        {
            throw new EngineException(
                $"the engine loaded {name?.FamiliarString ?? image.Config.Digest.ToString()} but its layers are not the image's ({string.Join(", ", expected)})");
        }

        var sent = image.Layers.Skip(omit).Sum(l => l.Descriptor?.Size ?? 0);
        return new MissingLayersLoadResult(loadedId, image.Layers.Count - omit, sent);
    }

    private static async Task<bool> EngineHasPrefixAsync(IImageEngine engine, IImage image, int count, string? tempDirectory, CancellationToken cancellationToken)
    {
        // The engine refuses a config with more non-empty history entries than layers: keep those of the prefix.
        var config = image.Config.WithDiffIds(image.Config.DiffIds.Take(count)).Edit(json =>
        {
            if (json["history"] is not System.Text.Json.Nodes.JsonArray history)
            {
                return;
            }

            static bool Empty(System.Text.Json.Nodes.JsonNode? h) =>
                h is System.Text.Json.Nodes.JsonObject o && o["empty_layer"] is System.Text.Json.Nodes.JsonValue v && v.TryGetValue<bool>(out var e) && e;
            while (history.Count > 0 && history.Count(h => !Empty(h)) > count)
            {
                history.RemoveAt(history.Count - 1);
            }
        });
        var probe = new ComposedImage(config, [.. image.Layers.Take(count).Select(l => new DescribedLayer(l.DiffId, l.Descriptor))]);
        var before = await engine.TryInspectImageAsync(config.Digest.ToString(), cancellationToken).ConfigureAwait(false);
        if (before is not null)
        {
            return true;
        }

        try
        {
            var id = await LoadArchiveAsync(engine, probe, new ImageWriteOptions { Format = ImageArchiveFormat.DockerArchive, OmitLayers = count },
                config.Digest.ToString(), [.. config.DiffIds.Select(d => d.ToString())], tempDirectory, cancellationToken).ConfigureAwait(false);
            return id is not null;
        }
        catch (EngineException)
        {
            return false;
        }
        finally
        {
            await engine.RemoveImageAsync(config.Digest.ToString(), CancellationToken.None).ConfigureAwait(false);
        }
    }

    private static async Task<string?> LoadArchiveAsync(IImageEngine engine, IImage image, ImageWriteOptions options, string lookup, IReadOnlyList<string> expected,
        string? tempDirectory, CancellationToken cancellationToken)
    {
        var path = Path.Combine(tempDirectory ?? Path.GetTempPath(), $"layertool-pull-load-{Guid.NewGuid():N}.tar");
        try
        {
            await ImageArchiveWriter.WriteAsync(path, image, options with { TemporaryDirectory = tempDirectory }, cancellationToken).ConfigureAwait(false);
            var archive = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan | FileOptions.Asynchronous);
            await using (archive.ConfigureAwait(false))
            {
                await engine.LoadImageAsync(archive, cancellationToken).ConfigureAwait(false);
            }

            var loaded = await engine.TryInspectImageAsync(lookup, cancellationToken).ConfigureAwait(false);
            return loaded is not null && loaded.DiffIds.SequenceEqual(expected, StringComparer.Ordinal) ? loaded.Id : null;
        }
        finally
        {
            File.Delete(path);
        }
    }
}
