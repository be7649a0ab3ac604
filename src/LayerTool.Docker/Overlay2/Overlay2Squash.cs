using System.Security.Cryptography;
using LayerTool.Docker.Images;
using LayerTool.Docker.Squash;
using LayerTool.Image;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Layers.Index;
using LayerTool.Image.Layers.Tar;
using LayerTool.Image.Squash;

namespace LayerTool.Docker.Overlay2;

/// <summary>
/// The local overlay2 fast path of a squash (docs/design/fast-path.md): when LayerTool runs next to the
/// engine (the layer directories are readable here) and the base is an ancestor, the final filesystem is
/// the base index plus the layer directories above the base, read directly; only the paths those layers
/// touch are looked at, and only their bytes are read. The result goes through the same
/// <see cref="LayerDiff"/> and the same verification as the export path.
/// </summary>
public sealed class Overlay2Squash : IFinalImageSource
{
    private readonly string _dataRoot;

    private Overlay2Squash(ImageConfig finalConfig, IReadOnlyList<string> upperTopFirst, IReadOnlyList<string> baseTopFirst, string dataRoot)
    {
        FinalConfig = finalConfig;
        _dataRoot = dataRoot;
        UpperDirs = upperTopFirst;
        BaseDirs = baseTopFirst;
        var temp = Path.Combine(dataRoot, "tmp");
        EngineTempDirectory = Directory.Exists(temp) ? temp : null;
    }

    /// <summary>
    /// The engine's own temp directory (<c>&lt;data root&gt;/tmp</c>, where <c>docker load</c> unpacks what it is
    /// sent) when it is there; null when the engine was pointed elsewhere (<c>DOCKER_TMPDIR</c>) and it is not.
    /// </summary>
    public string? EngineTempDirectory { get; }

    /// <summary>The final image's exact config (from the engine's image store, digest checked).</summary>
    public ImageConfig FinalConfig { get; }

    /// <summary>Diff directories of the layers above the base, top first.</summary>
    public IReadOnlyList<string> UpperDirs { get; }

    /// <summary>The base's diff directories, top first.</summary>
    public IReadOnlyList<string> BaseDirs { get; }

    /// <summary>Bytes of upper-layer files read by the last <see cref="WriteLayerAsync"/>.</summary>
    public long BytesRead { get; private set; }

    /// <summary>The fast path for squashing <paramref name="final"/> onto <paramref name="baseImage"/>
    /// (null = scratch), or null with the reason it does not apply.</summary>
    public static Overlay2Squash? TryCreate(EngineImage final, EngineImage? baseImage, out string? reason)
    {
        ArgumentNullException.ThrowIfNull(final);
        if (!Environment.IsPrivilegedProcess)
        {
            reason = "not running as root";
            return null;
        }
        var baseIds = baseImage?.DiffIds ?? [];
        if (baseIds.Count > final.DiffIds.Count || !baseIds.SequenceEqual(final.DiffIds.Take(baseIds.Count), StringComparer.Ordinal))
        {
            reason = "the base is not an ancestor of the image (its layers are not a prefix of the image's)";
            return null;
        }
        if (final.DiffIds.Count == 0)
        {
            reason = "the image has no layers";
            return null;
        }
        var layout = Overlay2Layout.TryResolve(final, out reason);
        if (layout is null) return null;
        if (baseImage is not null && baseIds.Count > 0)
        {
            // The base's own chain must be the same directories (same chain IDs → same cache IDs).
            var baseLayout = Overlay2Layout.TryResolve(baseImage, out reason);
            if (baseLayout is null) return null;
            if (!baseLayout.LayerDirs.SequenceEqual(layout.LayerDirs.Take(baseIds.Count), StringComparer.Ordinal))
            {
                reason = "the base's layer directories are not the image's lower ones";
                return null;
            }
        }
        var config = TryReadConfig(layout, final.Id, out reason);
        if (config is null) return null;
        if (!config.DiffIds.Select(d => d.ToString()).SequenceEqual(final.DiffIds, StringComparer.Ordinal))
        {
            reason = "the stored config's layers differ from the inspect's";
            return null;
        }
        var dirs = layout.LayerDirs;
        var upper = dirs.Skip(baseIds.Count).Reverse().ToList();
        var lower = dirs.Take(baseIds.Count).Reverse().ToList();
        return new Overlay2Squash(config, upper, lower, DataRoot(layout)!);
    }

    /// <summary>
    /// An image's config from the graph-driver image store next to the layers
    /// (<c>&lt;root&gt;/image/overlay2/imagedb/content/sha256/&lt;id&gt;</c>), checked against its ID.
    /// </summary>
    public static ImageConfig? TryReadConfig(Overlay2Layout layout, string imageId, out string? reason)
    {
        ArgumentNullException.ThrowIfNull(layout);
        reason = null;
        var root = DataRoot(layout);
        if (root is null || !imageId.StartsWith("sha256:", StringComparison.Ordinal))
        {
            reason = "cannot locate the engine's image store";
            return null;
        }
        var file = Path.Combine(root, "image", "overlay2", "imagedb", "content", "sha256", imageId["sha256:".Length..]);
        if (!File.Exists(file))
        {
            reason = $"the image's config is not at {file}";
            return null;
        }
        var bytes = File.ReadAllBytes(file);
        if ("sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes)) != imageId)
        {
            reason = $"{file} does not hash to the image ID";
            return null;
        }
        return ImageConfig.Parse(bytes, file);
    }

    /// <summary>The engine's data root: <c>&lt;root&gt;/overlay2/&lt;cache-id&gt;/diff</c> → <c>&lt;root&gt;</c>; null if the layout is not that.</summary>
    private static string? DataRoot(Overlay2Layout layout)
    {
        var storage = Path.GetDirectoryName(Path.GetDirectoryName(layout.LayerDirs[^1]));
        return storage is not null && Path.GetFileName(storage) == "overlay2" ? Path.GetDirectoryName(storage) : null;
    }

    /// <summary>The final image as the squash needs it (config; layers described by diffID only).</summary>
    public IImage Image => new ComposedImage(FinalConfig, [.. FinalConfig.DiffIds.Select(d => (ILayer)new DescribedLayer(d, null))]);

    /// <summary>The layer directories can be read as often as needed.</summary>
    public bool Rereadable => true;

    /// <summary>The base indexed from its own layer directories (a cold cache, without a save), when its config is readable there.</summary>
    public async Task<(FsIndex Index, ImageConfig Config)?> TryIndexBaseAsync(EngineImage baseImage, string? tempDirectory, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(baseImage);
        if (Overlay2Layout.TryResolve(baseImage, out _) is not { } layout || TryReadConfig(layout, baseImage.Id, out _) is not { } config) return null;
        return (await BuildBaseIndexAsync(tempDirectory, cancellationToken).ConfigureAwait(false), config);
    }

    /// <summary>Nothing is held open between calls.</summary>
    public void Dispose()
    {
    }

    /// <summary>Writes the new layer (a <see cref="SquashLayerWriter"/>).</summary>
    public async Task<LayerDiffResult> WriteLayerAsync(FsIndex baseIndex, Stream output, LayerDiffOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        using var source = new Overlay2FinalSource(baseIndex, UpperDirs, BaseDirs, OwnerNames.FromHost());
        try
        {
            return await LayerDiff.WriteAsync(baseIndex, source, output, options with { ReopenContent = Reopen }, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            BytesRead = source.BytesRead;
        }
    }

    /// <summary>The base's index built from its own layer directories (a cold cache, without a save), on disk.</summary>
    public async Task<FsIndex> BuildBaseIndexAsync(string? tempDirectory, CancellationToken cancellationToken)
    {
        using var source = new Overlay2FinalSource(FsIndex.Empty, BaseDirs, [], OwnerNames.FromHost());
        return await FsIndex.FromFlattenedOnDiskAsync(source, tempDirectory, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The final image's root directory entry (see <see cref="RootEntry"/>): a layer directory does not keep it (the
    /// engine ignores it when applying a layer), but the layer's tar-split, from which the engine's save rebuilds the
    /// tar, keeps its headers: the raw segments before the first entry are its first header. Null when no layer has
    /// one, or a tar-split cannot be read.
    /// </summary>
    public async Task<LayerEntry?> FindRootAsync(CancellationToken cancellationToken)
    {
        LayerEntry? root = null;
        string? chain = null;
        foreach (var diffId in FinalConfig.DiffIds)
        {
            chain = chain is null ? diffId.ToString() : "sha256:" + Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.ASCII.GetBytes($"{chain} {diffId}")));
            var file = Path.Combine(_dataRoot, "image", "overlay2", "layerdb", "sha256", chain["sha256:".Length..], "tar-split.json.gz");
            byte[] headers;
            try
            {
                headers = await FirstHeaderAsync(file, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException or FormatException or InvalidDataException)
            {
                return null;
            }
            var reader = new LayerTarReader(new MemoryStream(headers, writable: false), source: file);
            await using (reader.ConfigureAwait(false))
            {
                try
                {
                    if (await reader.ReadNextAsync(cancellationToken).ConfigureAwait(false) is { Path.IsRoot: true, IsDirectory: true } first) root = first;
                }
                catch (ImageFormatException)
                {
                    return null;
                }
            }
        }
        return root;
    }

    /// <summary>The raw bytes a tar-split file holds before its first entry (type 2 segments up to the first type 1).</summary>
    private static async Task<byte[]> FirstHeaderAsync(string file, CancellationToken cancellationToken)
    {
        var input = new System.IO.Compression.GZipStream(File.OpenRead(file), System.IO.Compression.CompressionMode.Decompress);
        using var text = new StreamReader(input);
        using var bytes = new MemoryStream();
        while (await text.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
        {
            using var json = System.Text.Json.JsonDocument.Parse(line);
            if (json.RootElement.GetProperty("type").GetInt32() != 2) break;
            if (json.RootElement.TryGetProperty("payload", out var payload) && payload.ValueKind == System.Text.Json.JsonValueKind.String)
                bytes.Write(payload.GetBytesFromBase64());
            if (bytes.Length > 1 << 20) break;
        }
        return bytes.ToArray();
    }

    /// <summary>Re-reads a final file for LayerDiff's rare hard-link case: the topmost layer that has it.</summary>
    private Task<Stream> Reopen(LayerPath path, CancellationToken cancellationToken)
    {
        foreach (var dir in UpperDirs.Concat(BaseDirs))
        {
            var z = NativeFs.Z([.. System.Text.Encoding.UTF8.GetBytes(dir), (byte)'/', .. path.Bytes]);
            if (NativeFs.Lstat(z) is { } st)
            {
                if (!st.IsRegular) break;
                return Task.FromResult<Stream>(NativeFs.OpenRead(z));
            }
        }
        throw new ImageFormatException($"'{path}' cannot be re-read from the layer directories");
    }
}
