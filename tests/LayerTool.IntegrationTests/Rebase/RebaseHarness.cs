using LayerTool.Cli;
using LayerTool.Docker.Images;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Index;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.IntegrationTests.Rebase;

/// <summary>
/// The rebase tests' images: a busybox base v1 made with <c>docker import</c> of a folder, a patched v2 (a library
/// changed, one added, one removed, a certificate and a doc file changed, PATH changed), and apps built on them with
/// the classic <c>docker build</c>. Everything is tagged <c>lt-test/rebase-NAME:RUN</c> and removed at the end.
/// </summary>
public sealed class RebaseHarness(EngineFixture engine) : IAsyncDisposable
{
    private readonly List<string> _images = [];
    private readonly List<string> _paths = [];

    public string Run { get; } = Guid.NewGuid().ToString("N")[..10];

    public DockerImageEngine Images { get; } = new(engine.Connection, new Dictionary<string, string> { [EngineFixture.TestLabel] = "1" });

    public string V1 => Name("base") .Replace(":" + Run, ":v1-" + Run, StringComparison.Ordinal);

    public string V2 => Name("base").Replace(":" + Run, ":v2-" + Run, StringComparison.Ordinal);

    public string Name(string name) => $"lt-test/rebase-{name}:{Run}";

    public string Track(string image)
    {
        _images.Add(image);
        return image;
    }

    public string TempDir()
    {
        var dir = Directory.CreateTempSubdirectory("layertool-rebase-test-").FullName;
        _paths.Add(dir);
        return dir;
    }

    public string CacheDir => _cache ??= TempDir();

    private string? _cache;

    /// <summary>Imports the two bases.</summary>
    public async Task CreateBasesAsync()
    {
        await ImportAsync(V1, "PATH=/bin", new Dictionary<string, string>
        {
            ["lib/libssl.so.3"] = "ssl v1",
            ["lib/libold.so"] = "old",
            ["etc/ssl/certs/ca.pem"] = "ca v1",
            ["usr/share/doc/readme"] = "doc v1",
        });
        await ImportAsync(V2, "PATH=/usr/bin:/bin", new Dictionary<string, string>
        {
            ["lib/libssl.so.3"] = "ssl v2 (patched)",
            ["lib/libnew.so"] = "new",
            ["etc/ssl/certs/ca.pem"] = "ca v2",
            ["usr/share/doc/readme"] = "doc v2",
        });
    }

    private async Task ImportAsync(string tag, string env, IReadOnlyDictionary<string, string> files)
    {
        var root = TempDir();
        Directory.CreateDirectory(Path.Combine(root, "bin"));
        File.Copy("/bin/busybox", Path.Combine(root, "bin", "busybox"));
        foreach (var applet in new[] { "sh", "echo", "mkdir", "rm", "cat", "ls", "cp", "dd", "sha256sum" })
            File.CreateSymbolicLink(Path.Combine(root, "bin", applet), "busybox");
        foreach (var (path, text) in files)
        {
            var full = Path.Combine(root, path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            await File.WriteAllTextAsync(full, text);
        }

        Track(tag);
        var tar = Path.Combine(TempDir(), "root.tar");
        var made = await EngineFixture.RunAsync("tar", ["-C", root, "--owner=0", "--group=0", "-cf", tar, "."], root, CancellationToken.None);
        made.ExitCode.ShouldBe(0, made.StdErr);
        await engine.DockerAsync(["import", "--change", $"ENV {env}", "--change", "CMD [\"sh\"]", tar, tag]);
    }

    /// <summary>Builds a Dockerfile whose FROM is <c>{BASE}</c>, on <paramref name="baseImage"/>, with context files.</summary>
    public async Task<string> BuildAsync(string name, string baseImage, string dockerfile, IReadOnlyDictionary<string, string>? files = null)
    {
        var dir = TempDir();
        await File.WriteAllTextAsync(Path.Combine(dir, "Dockerfile"), dockerfile.Replace("{BASE}", baseImage, StringComparison.Ordinal));
        foreach (var (path, text) in files ?? new Dictionary<string, string>())
            await File.WriteAllTextAsync(Path.Combine(dir, path), text);
        var tag = Track(Name(name));
        await engine.DockerAsync(["build", "-q", "--label", $"{EngineFixture.TestLabel}=1", "-t", tag, dir]);
        return tag;
    }

    public async Task<(int Code, string Out, string Err)> CliAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var context = new CliContext(output, error, () => TextReader.Null, TempDir());
        var code = await LayerToolApp.RunAsync(args, context, CancellationToken.None, Environment.GetEnvironmentVariable);
        return (code, output.ToString(), error.ToString());
    }

    public async Task<IReadOnlyList<string>> DiffIdsAsync(string image) =>
        (await Images.TryInspectImageAsync(image, CancellationToken.None)).ShouldNotBeNull().DiffIds;

    /// <summary>The filesystem of a container of the image, as <c>docker export</c> gives it (path, type, mode, uid,
    /// gid, size, link, content hash).</summary>
    public Task<FsIndex> ExportIndexAsync(string image) =>
        Images.ExportImageFilesystemAsync(image, async (stream, ct) =>
        {
            var reader = new LayerTarReader(stream, leaveOpen: true);
            await using (reader.ConfigureAwait(false))
                return await FsIndex.FromFlattenedAsync(reader, ct);
        }, CancellationToken.None);

    public Task SaveAsync(string path, params string[] images) => engine.DockerAsync(["save", "-o", path, .. images]);

    public Task<string> DockerAsync(params string[] args) => engine.DockerAsync(args);

    public async ValueTask DisposeAsync()
    {
        foreach (var image in Enumerable.Reverse(_images))
            await Images.RemoveImageAsync(image, CancellationToken.None);
        foreach (var path in _paths)
        {
            try
            {
                Directory.Delete(path, true);
            }
            catch (IOException)
            {
            }
        }
    }
}
