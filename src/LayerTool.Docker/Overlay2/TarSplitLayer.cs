using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using LayerTool.Docker.Images;
using LayerTool.Image;
using LayerTool.Image.Formats;

namespace LayerTool.Docker.Overlay2;

/// <summary>
/// A layer of the engine's overlay2 store, its tar reassembled byte for byte as the engine's own save does: the
/// layer store keeps, per layer (<c>&lt;root&gt;/image/overlay2/layerdb/sha256/&lt;chain id&gt;/tar-split.json.gz</c>),
/// the tar's raw bytes except the file contents (vbatts/tar-split: one JSON line per segment of raw bytes, type 2,
/// or per file, type 1, whose <c>size</c> bytes are read from the layer's <c>diff</c> directory). The result is
/// checked against the diff ID as it is read to its end. No <c>docker save</c>: a rebase reads only the layers it needs.
/// </summary>
public sealed class TarSplitLayer : ILayer
{
    private readonly string _tarSplit;
    private readonly string _diffDirectory;

    private TarSplitLayer(Digest diffId, string tarSplit, string diffDirectory)
    {
        DiffId = diffId;
        _tarSplit = tarSplit;
        _diffDirectory = diffDirectory;
    }

    public Digest DiffId { get; }

    public Descriptor? Descriptor => null;

    public Stream Open(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var file = new FileStream(_tarSplit, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        Stream tar = new TarSplitStream(file, Encoding.UTF8.GetBytes(_diffDirectory), _tarSplit);
        return new VerifyingStream(tar, DiffId, null, $"layer {DiffId} reassembled from {_tarSplit}");
    }

    /// <summary>
    /// The image from the engine's store without a save: its exact config (from the image store, checked against the
    /// ID) and every layer as a <see cref="TarSplitLayer"/>. Null, with the reason, when the engine is not a local
    /// overlay2 one readable here, or a layer's tar-split or cache ID is missing or does not match the layer directory.
    /// </summary>
    public static IImage? TryOpenImage(EngineImage image, out string? reason)
    {
        ArgumentNullException.ThrowIfNull(image);
        var layout = Overlay2Layout.TryResolve(image, out reason);
        if (layout is null) return null;
        var config = Overlay2Squash.TryReadConfig(layout, image.Id, out reason);
        if (config is null) return null;
        if (!config.DiffIds.Select(d => d.ToString()).SequenceEqual(image.DiffIds, StringComparer.Ordinal))
        {
            reason = "the image store's config does not list the image's layers";
            return null;
        }

        var storage = Path.GetDirectoryName(Path.GetDirectoryName(layout.LayerDirs[0]))!;
        var layerDb = Path.Combine(Path.GetDirectoryName(storage)!, "image", "overlay2", "layerdb", "sha256");
        var layers = new List<ILayer>(layout.LayerDirs.Count);
        string? chain = null;
        for (var i = 0; i < layout.LayerDirs.Count; i++)
        {
            var diffId = config.DiffIds[i];
            chain = chain is null ? diffId.ToString() : "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.ASCII.GetBytes($"{chain} {diffId}")));
            var dir = Path.Combine(layerDb, chain["sha256:".Length..]);
            var tarSplit = Path.Combine(dir, "tar-split.json.gz");
            var cacheIdFile = Path.Combine(dir, "cache-id");
            if (!File.Exists(tarSplit) || !File.Exists(cacheIdFile))
            {
                reason = $"layer {i + 1} has no tar-split in the layer store ({dir})";
                return null;
            }

            var cacheId = File.ReadAllText(cacheIdFile).Trim();
            if (Path.Combine(storage, cacheId, "diff") != layout.LayerDirs[i])
            {
                reason = $"layer {i + 1}'s directory ({layout.LayerDirs[i]}) is not the layer store's ({cacheId})";
                return null;
            }

            layers.Add(new TarSplitLayer(diffId, tarSplit, layout.LayerDirs[i]));
        }

        return new ComposedImage(config, layers);
    }

    /// <summary>The reassembly: raw segments as stored, file contents from the diff directory, in the stored order.</summary>
    private sealed class TarSplitStream : ReadOnlyStream
    {
        private readonly StreamReader _lines;
        private readonly byte[] _root;
        private readonly string _what;
        private byte[] _segment = [];
        private int _segmentOffset;
        private FileStream? _file;
        private long _fileLeft;
        private string _fileName = "";

        public TarSplitStream(Stream gzipped, byte[] root, string what)
        {
            _lines = new StreamReader(new GZipStream(gzipped, CompressionMode.Decompress, leaveOpen: false), Encoding.UTF8, false, 1 << 16);
            _root = root;
            _what = what;
        }

        public override int Read(Span<byte> buffer)
        {
            while (true)
            {
                if (buffer.Length == 0) return 0;
                if (_segmentOffset < _segment.Length)
                {
                    var n = Math.Min(buffer.Length, _segment.Length - _segmentOffset);
                    _segment.AsSpan(_segmentOffset, n).CopyTo(buffer);
                    _segmentOffset += n;
                    return n;
                }

                if (_file is not null)
                {
                    if (_fileLeft == 0)
                    {
                        EndFile();
                        continue;
                    }

                    var n = _file.Read(buffer[..(int)Math.Min(buffer.Length, _fileLeft)]);
                    if (n == 0) throw new ImageFormatException($"{_what}: {_fileName} is shorter in the layer directory than its tar entry");
                    _fileLeft -= n;
                    return n;
                }

                if (!Next()) return 0;
            }
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (buffer.Length == 0) return 0;
                if (_file is not null && _fileLeft > 0 && _segmentOffset >= _segment.Length)
                {
                    var n = await _file.ReadAsync(buffer[..(int)Math.Min(buffer.Length, _fileLeft)], cancellationToken).ConfigureAwait(false);
                    if (n == 0) throw new ImageFormatException($"{_what}: {_fileName} is shorter in the layer directory than its tar entry");
                    _fileLeft -= n;
                    return n;
                }

                // Segments and the tar-split lines are small and already in memory or one gzip block away.
                return Read(buffer.Span);
            }
        }

        /// <summary>Takes the next JSON line: a raw segment to send, or a file whose contents follow; false at the end.</summary>
        private bool Next()
        {
            var line = _lines.ReadLine();
            while (line is { Length: 0 }) line = _lines.ReadLine();
            if (line is null) return false;
            using var json = JsonDocument.Parse(line);
            var entry = json.RootElement;
            var type = entry.GetProperty("type").GetInt32();
            switch (type)
            {
                case 2:
                    _segment = entry.TryGetProperty("payload", out var payload) && payload.ValueKind == JsonValueKind.String ? payload.GetBytesFromBase64() : [];
                    _segmentOffset = 0;
                    return true;
                case 1:
                    var size = entry.TryGetProperty("size", out var s) ? s.GetInt64() : 0;
                    if (size == 0) return true;
                    var name = entry.TryGetProperty("name_raw", out var raw) && raw.ValueKind == JsonValueKind.String
                        ? raw.GetBytesFromBase64()
                        : Encoding.UTF8.GetBytes(entry.GetProperty("name").GetString() ?? "");
                    _fileName = Encoding.UTF8.GetString(name);
                    _file = NativeFs.OpenRead(NativeFs.Z(Join(name)));
                    _fileLeft = size;
                    return true;
                default:
                    throw new ImageFormatException($"{_what}: an entry of unknown type {type}");
            }
        }

        /// <summary>The diff directory's path of a tar entry name (relative; <c>./</c> and leading slashes dropped; no <c>..</c>).</summary>
        private byte[] Join(byte[] name)
        {
            var start = 0;
            while (true)
            {
                if (start + 1 < name.Length && name[start] == '.' && name[start + 1] == '/') start += 2;
                else if (start < name.Length && name[start] == '/') start++;
                else break;
            }

            var relative = name.AsSpan(start);
            foreach (var part in Encoding.Latin1.GetString(relative).Split('/'))
            {
                if (part == "..") throw new ImageFormatException($"{_what}: the entry {_fileName} climbs out of the layer");
            }

            var path = new byte[_root.Length + 1 + relative.Length];
            _root.CopyTo(path, 0);
            path[_root.Length] = (byte)'/';
            relative.CopyTo(path.AsSpan(_root.Length + 1));
            return path;
        }

        private void EndFile()
        {
            _file?.Dispose();
            _file = null;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                EndFile();
                _lines.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
