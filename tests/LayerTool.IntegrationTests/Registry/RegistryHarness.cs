using System.Text;
using LayerTool.Cli;
using LayerTool.Image;
using LayerTool.Image.Formats;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.IntegrationTests.Registry;

/// <summary>A generated image: its archive, its layer tars (files) and config bytes, to compare pulls with.</summary>
public sealed record TestImage(string Archive, IReadOnlyList<string> LayerFiles, byte[] Config, IReadOnlyList<IReadOnlyDictionary<string, byte[]>> Files);

/// <summary>Runs the CLI in-process with its own HOME, docker config and cache, and makes test images.</summary>
public sealed class RegistryHarness : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("layertool-registry-it-").FullName;

    public string Cache => Path.Combine(Root, "cache");

    public string? DockerHost { get; init; }

    public sealed record Result(int Code, string Out, string Err);

    public async Task<Result> CliAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var environment = new Dictionary<string, string?>
        {
            ["HOME"] = Path.Combine(Root, "home"),
            ["XDG_CACHE_HOME"] = Cache,
            ["DOCKER_CONFIG"] = Path.Combine(Root, "docker"),
            ["DOCKER_HOST"] = DockerHost ?? Environment.GetEnvironmentVariable("DOCKER_HOST"),
        };
        var code = await LayerToolApp.RunAsync([.. args, "--progress", "plain"], new CliContext(output, error, () => TextReader.Null, Root), CancellationToken.None,
            name => environment.TryGetValue(name, out var value) ? value : null);
        return new Result(code, output.ToString(), error.ToString());
    }

    public async Task<Result> OkAsync(params string[] args)
    {
        var result = await CliAsync(args);
        result.Code.ShouldBe(0, $"layertool {string.Join(' ', args)}\n{result.Err}");
        return result;
    }

    /// <summary>
    /// An image of <paramref name="layers"/> generated layers as a docker-archive: layer i holds <c>layer{i}/</c> with
    /// files of random bytes (<paramref name="fileSize"/> each); the last layer also deletes <c>layer0/f0</c> (a whiteout).
    /// </summary>
    public async Task<TestImage> MakeImageAsync(string name, int layers, int fileSize = 50_000, int filesPerLayer = 3)
    {
        var dir = Directory.CreateDirectory(Path.Combine(Root, name)).FullName;
        var random = new Random(name.GetHashCode(StringComparison.Ordinal));
        var files = new List<string>();
        var layerObjects = new List<ILayer>();
        var contents = new List<IReadOnlyDictionary<string, byte[]>>();
        for (var i = 0; i < layers; i++)
        {
            var path = Path.Combine(dir, $"layer{i}.tar");
            var map = new Dictionary<string, byte[]>(StringComparer.Ordinal);
            var stream = File.Create(path);
            await using (stream)
            {
                var writer = new LayerTarWriter(stream, leaveOpen: true);
                await using (writer)
                {
                    var time = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000);
                    await writer.WriteEntryAsync(new LayerEntry { Path = LayerPath.Parse($"layer{i}"), Type = LayerEntryType.Directory, Mode = 0x1ed, ModificationTime = time }, null, CancellationToken.None);
                    for (var f = 0; f < filesPerLayer; f++)
                    {
                        var bytes = new byte[fileSize + f];
                        random.NextBytes(bytes);
                        var file = $"layer{i}/f{f}";
                        map[file] = bytes;
                        await writer.WriteEntryAsync(new LayerEntry { Path = LayerPath.Parse(file), Type = LayerEntryType.RegularFile, Mode = 0x1a4, Size = bytes.Length, ModificationTime = time },
                            new MemoryStream(bytes), CancellationToken.None);
                    }

                    if (i == layers - 1 && i > 0)
                        await writer.WriteEntryAsync(new LayerEntry { Path = LayerPath.Parse("layer0/.wh.f0"), Type = LayerEntryType.RegularFile, Mode = 0x1a4, ModificationTime = time }, null, CancellationToken.None);
                    await writer.FinishAsync(CancellationToken.None);
                }
            }

            files.Add(path);
            contents.Add(map);
            layerObjects.Add(await FileLayer.CreateAsync(path, CancellationToken.None));
        }

        var diffIds = string.Join(',', layerObjects.Select(l => $"\"{l.DiffId}\""));
        var history = string.Join(',', layerObjects.Select((_, i) => $"{{\"created_by\":\"layer {i}\"}}"));
        var config = Encoding.UTF8.GetBytes(
            $"{{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{{\"Cmd\":[\"/bin/sh\"]}},\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[{diffIds}]}},\"history\":[{history}]}}");
        var image = new ComposedImage(ImageConfig.Parse(config), layerObjects);
        var archive = Path.Combine(dir, "image.tar");
        await ImageArchiveWriter.WriteAsync(archive, image, new ImageWriteOptions { Format = ImageArchiveFormat.DockerArchive }, CancellationToken.None);
        return new TestImage(archive, files, image.Config.Bytes.ToArray(), contents);
    }

    /// <summary>Every layer tar of an archive or layout, uncompressed, in order.</summary>
    public static async Task<List<byte[]>> LayerTarsAsync(string archivePath)
    {
        using var archive = ImageArchive.Open(archivePath);
        var image = archive.GetImage();
        var result = new List<byte[]>();
        foreach (var layer in image.Layers)
        {
            await using var stream = layer.Open(CancellationToken.None);
            using var copy = new MemoryStream();
            await stream.CopyToAsync(copy);
            result.Add(copy.ToArray());
        }

        return result;
    }

    public static byte[] ConfigOf(string archivePath)
    {
        using var archive = ImageArchive.Open(archivePath);
        return archive.GetImage().Config.Bytes.ToArray();
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
