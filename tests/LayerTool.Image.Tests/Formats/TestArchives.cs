using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using LayerTool.Image;

namespace LayerTool.Image.Tests.Formats;

/// <summary>A synthetic image: uncompressed layer tars and a config naming their diff IDs.</summary>
public sealed record TestImage(IReadOnlyList<byte[]> Layers, byte[] Config, string Architecture)
{
    public IReadOnlyList<Digest> DiffIds => Layers.Select(l => Digest.Compute(l)).ToList();

    public Digest ConfigDigest => Digest.Compute(Config);

    /// <summary>An image with <paramref name="layers"/> small layers; <paramref name="seed"/> varies the contents.</summary>
    public static TestImage Create(int layers, string seed = "a", string architecture = "amd64", IReadOnlyList<byte[]>? baseLayers = null, JsonArray? baseHistory = null)
    {
        var tars = new List<byte[]>(baseLayers ?? []);
        for (var i = 0; i < layers; i++)
        {
            tars.Add(LayerTar(($"{seed}/file-{i}.txt", $"layer {i} of {seed}\n")));
        }

        var history = baseHistory?.DeepClone() as JsonArray ?? [];
        for (var i = 0; i < layers; i++)
        {
            history.Add(new JsonObject { ["created"] = "2024-01-01T00:00:00Z", ["created_by"] = $"RUN step {i} of {seed}" });
            history.Add(new JsonObject { ["created"] = "2024-01-01T00:00:00Z", ["created_by"] = $"ENV X{i}={seed}", ["empty_layer"] = true });
        }

        var config = new JsonObject
        {
            ["architecture"] = architecture,
            ["os"] = "linux",
            ["created"] = "2024-01-02T03:04:05.123456789Z",
            ["config"] = new JsonObject
            {
                ["Env"] = new JsonArray("PATH=/usr/bin", "SEED=" + seed),
                ["Cmd"] = new JsonArray("/bin/sh"),
                ["Labels"] = new JsonObject { ["seed"] = seed },
                ["ExposedPorts"] = new JsonObject { ["80/tcp"] = new JsonObject() },
                ["x-future-field"] = "kept",
            },
            ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray(tars.Select(t => (JsonNode)Digest.Compute(t).ToString()).ToArray()) },
            ["history"] = history,
            ["moby.extra"] = new JsonObject { ["unknown"] = 1 },
        };
        return new TestImage(tars, Encoding.UTF8.GetBytes(config.ToJsonString()), architecture);
    }

    /// <summary>A layer tar holding the given files.</summary>
    public static byte[] LayerTar(params (string Name, string Content)[] files)
    {
        using var buffer = new MemoryStream();
        using (var writer = new TarWriter(buffer, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var (name, content) in files)
            {
                var dir = Path.GetDirectoryName(name);
                if (!string.IsNullOrEmpty(dir))
                {
                    writer.WriteEntry(new PaxTarEntry(TarEntryType.Directory, dir + "/"));
                }

                writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)) });
            }
        }

        return buffer.ToArray();
    }

    public static byte[] Gzip(byte[] data)
    {
        using var buffer = new MemoryStream();
        using (var gzip = new GZipStream(buffer, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(data);
        }

        return buffer.ToArray();
    }
}

/// <summary>Builds archive member lists in the layouts docker and OCI tools write, then writes them as tars or directories.</summary>
internal static class TestArchives
{
    /// <summary>`docker save` up to Docker 24: &lt;id&gt;/layer.tar, &lt;config hex&gt;.json, manifest.json, repositories.</summary>
    public static List<(string Name, byte[] Data)> DockerArchive(TestImage image, string[] repoTags, bool gzipLayers = false, bool symlinkDuplicate = false)
    {
        var members = new List<(string, byte[])>();
        var layerPaths = new List<string>();
        for (var i = 0; i < image.Layers.Count; i++)
        {
            var id = Digest.Compute(Encoding.UTF8.GetBytes($"v1-{i}-{image.DiffIds[i]}")).Hex;
            members.Add(($"{id}/VERSION", "1.0"u8.ToArray()));
            members.Add(($"{id}/json", Encoding.UTF8.GetBytes($"{{\"id\":\"{id}\"}}")));
            members.Add(($"{id}/layer.tar", gzipLayers ? TestImage.Gzip(image.Layers[i]) : image.Layers[i]));
            layerPaths.Add($"{id}/layer.tar");
        }

        members.Add(($"{image.ConfigDigest.Hex}.json", image.Config));
        var manifest = new JsonArray(new JsonObject
        {
            ["Config"] = $"{image.ConfigDigest.Hex}.json",
            ["RepoTags"] = new JsonArray(repoTags.Select(t => (JsonNode)t).ToArray()),
            ["Layers"] = new JsonArray(layerPaths.Select(p => (JsonNode)p).ToArray()),
        });
        members.Add(("manifest.json", Encoding.UTF8.GetBytes(manifest.ToJsonString())));
        members.Add(("repositories", "{}"u8.ToArray()));
        return members;
    }

    /// <summary>An OCI layout; with <paramref name="withManifestJson"/>, the Docker 25+ save layout.</summary>
    public static List<(string Name, byte[] Data)> OciLayout(
        IReadOnlyList<(TestImage Image, string[] Names)> images, bool gzipLayers = false, bool withManifestJson = false, bool nestedIndex = false)
    {
        var members = new List<(string, byte[])> { ("oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}"u8.ToArray()) };
        var blobs = new Dictionary<string, byte[]>();
        var indexEntries = new JsonArray();
        var platformEntries = new JsonArray();
        var dockerManifest = new JsonArray();
        foreach (var (image, names) in images)
        {
            var layerDescriptors = new JsonArray();
            var layerPaths = new JsonArray();
            foreach (var layer in image.Layers)
            {
                var blob = gzipLayers ? TestImage.Gzip(layer) : layer;
                var digest = Digest.Compute(blob);
                blobs[$"blobs/sha256/{digest.Hex}"] = blob;
                layerDescriptors.Add(Descriptor(gzipLayers ? MediaTypes.OciLayerGzip : MediaTypes.OciLayer, digest, blob.Length));
                layerPaths.Add($"blobs/sha256/{digest.Hex}");
            }

            blobs[$"blobs/sha256/{image.ConfigDigest.Hex}"] = image.Config;
            var manifest = new JsonObject
            {
                ["schemaVersion"] = 2,
                ["mediaType"] = MediaTypes.OciManifest,
                ["config"] = Descriptor(MediaTypes.OciConfig, image.ConfigDigest, image.Config.Length),
                ["layers"] = layerDescriptors,
            };
            var manifestBytes = Encoding.UTF8.GetBytes(manifest.ToJsonString());
            var manifestDigest = Digest.Compute(manifestBytes);
            blobs[$"blobs/sha256/{manifestDigest.Hex}"] = manifestBytes;
            if (nestedIndex)
            {
                var entry = Descriptor(MediaTypes.OciManifest, manifestDigest, manifestBytes.Length);
                entry["platform"] = new JsonObject { ["architecture"] = image.Architecture, ["os"] = "linux" };
                platformEntries.Add(entry);
            }
            else
            {
                foreach (var name in names.DefaultIfEmpty(null))
                {
                    var entry = Descriptor(MediaTypes.OciManifest, manifestDigest, manifestBytes.Length);
                    if (name is not null)
                    {
                        var reference = ImageReference.Parse(name);
                        entry["annotations"] = new JsonObject
                        {
                            ["io.containerd.image.name"] = reference.ToString(),
                            ["org.opencontainers.image.ref.name"] = reference.Tag,
                        };
                    }

                    indexEntries.Add(entry);
                }
            }

            dockerManifest.Add(new JsonObject
            {
                ["Config"] = $"blobs/sha256/{image.ConfigDigest.Hex}",
                ["RepoTags"] = new JsonArray(names.Select(n => (JsonNode)n).ToArray()),
                ["Layers"] = layerPaths,
            });
        }

        if (nestedIndex)
        {
            var nested = new JsonObject { ["schemaVersion"] = 2, ["mediaType"] = MediaTypes.OciIndex, ["manifests"] = platformEntries };
            var nestedBytes = Encoding.UTF8.GetBytes(nested.ToJsonString());
            var nestedDigest = Digest.Compute(nestedBytes);
            blobs[$"blobs/sha256/{nestedDigest.Hex}"] = nestedBytes;
            var entry = Descriptor(MediaTypes.OciIndex, nestedDigest, nestedBytes.Length);
            entry["annotations"] = new JsonObject { ["org.opencontainers.image.ref.name"] = "multi" };
            indexEntries.Add(entry);
        }

        members.AddRange(blobs.Select(b => (b.Key, b.Value)));
        var index = new JsonObject { ["schemaVersion"] = 2, ["mediaType"] = MediaTypes.OciIndex, ["manifests"] = indexEntries };
        members.Add(("index.json", Encoding.UTF8.GetBytes(index.ToJsonString())));
        if (withManifestJson)
        {
            members.Add(("manifest.json", Encoding.UTF8.GetBytes(dockerManifest.ToJsonString())));
        }

        return members;
    }

    /// <summary>Writes members as a tar with the BCL writer (directories for every parent, like docker save).</summary>
    public static string WriteTar(string path, IEnumerable<(string Name, byte[] Data)> members, IReadOnlyDictionary<string, string>? symlinks = null, TarEntryFormat format = TarEntryFormat.Pax)
    {
        using var file = File.Create(path);
        using var writer = new TarWriter(file, format);
        var directories = new HashSet<string>();
        foreach (var (name, data) in members)
        {
            var dir = Path.GetDirectoryName(name)!.Replace('\\', '/');
            if (dir.Length > 0 && directories.Add(dir))
            {
                writer.WriteEntry(Entry(format, TarEntryType.Directory, dir + "/"));
            }

            if (symlinks is not null && symlinks.TryGetValue(name, out var target))
            {
                var link = Entry(format, TarEntryType.SymbolicLink, name);
                link.LinkName = target;
                writer.WriteEntry(link);
                continue;
            }

            var entry = Entry(format, TarEntryType.RegularFile, name);
            entry.DataStream = new MemoryStream(data);
            writer.WriteEntry(entry);
        }

        return path;
    }

    private static TarEntry Entry(TarEntryFormat format, TarEntryType type, string name) => format switch
    {
        TarEntryFormat.Gnu => new GnuTarEntry(type, name),
        TarEntryFormat.Ustar => new UstarTarEntry(type, name),
        TarEntryFormat.V7 => new V7TarEntry(type == TarEntryType.RegularFile ? TarEntryType.V7RegularFile : type, name),
        _ => new PaxTarEntry(type, name),
    };

    public static string WriteDirectory(string path, IEnumerable<(string Name, byte[] Data)> members)
    {
        foreach (var (name, data) in members)
        {
            var full = Path.Combine(path, name);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllBytes(full, data);
        }

        return path;
    }

    /// <summary>Reads a whole stream (a layer, in tests only).</summary>
    public static byte[] ReadAll(Stream stream)
    {
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return buffer.ToArray();
    }

    /// <summary>The member names of a tar.</summary>
    public static List<string> MemberNames(string path)
    {
        using var file = File.OpenRead(path);
        using var reader = new TarReader(file);
        var names = new List<string>();
        while (reader.GetNextEntry() is { } entry)
        {
            names.Add(entry.Name);
        }

        return names;
    }

    /// <summary>One member's bytes from a tar.</summary>
    public static byte[] Member(string path, string name)
    {
        using var file = File.OpenRead(path);
        using var reader = new TarReader(file);
        while (reader.GetNextEntry() is { } entry)
        {
            if (entry.Name == name)
            {
                return ReadAll(entry.DataStream!);
            }
        }

        throw new InvalidOperationException($"no member {name}");
    }

    private static JsonObject Descriptor(string mediaType, Digest digest, long size) =>
        new() { ["mediaType"] = mediaType, ["digest"] = digest.ToString(), ["size"] = size };
}

/// <summary>A temporary directory deleted after the test.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "layertool-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose() => Directory.Delete(Path, recursive: true);
}

/// <summary>Checks an image read back against the synthetic image it was made from.</summary>
public static class ImageAssertions
{
    public static void ShouldHaveLayers(IImage read, TestImage expected)
    {
        read.Config.Bytes.ToArray().ShouldBe(expected.Config);
        read.Config.Digest.ShouldBe(expected.ConfigDigest);
        read.Layers.Count.ShouldBe(expected.Layers.Count);
        for (var i = 0; i < expected.Layers.Count; i++)
        {
            read.Layers[i].DiffId.ShouldBe(expected.DiffIds[i]);
            using var stream = read.Layers[i].Open(CancellationToken.None);
            TestArchives.ReadAll(stream).ShouldBe(expected.Layers[i]);
        }
    }
}
