using LayerTool.Cli;
using LayerTool.Docker.Images;
using LayerTool.Image.Formats;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Layers.Index;
using LayerTool.Image.Layers.Tar;
using LayerTool.Image.Reports;

namespace LayerTool.IntegrationTests.Squash;

/// <summary>
/// Builds small test images with <c>docker build</c> (labelled <c>layertool.test=1</c>, tagged
/// <c>lt-test/NAME:RUN</c>), runs the CLI in-process and reads images back as filesystem indexes (from a
/// save: every layer merged, so the engine's init layer plays no part). Removes what it made.
/// </summary>
public sealed class SquashHarness(EngineFixture engine) : IAsyncDisposable
{
    private readonly List<string> _images = [];
    private readonly List<string> _paths = [];

    public string Run { get; } = Guid.NewGuid().ToString("N")[..10];

    public DockerImageEngine Images { get; } = new(engine.Connection, new Dictionary<string, string> { [EngineFixture.TestLabel] = "1" });

    /// <summary>A fresh temp directory, deleted at the end.</summary>
    public string TempDir()
    {
        var dir = Directory.CreateTempSubdirectory("layertool-squash-test-").FullName;
        _paths.Add(dir);
        return dir;
    }

    /// <summary>A cache directory of this test's own (so a cold and a warm cache can both be tested).</summary>
    public string CacheDir => _cache ??= TempDir();

    private string? _cache;

    /// <summary>The name a test image gets.</summary>
    public string Name(string name) => $"lt-test/{name}:{Run}";

    /// <summary>Registers an image name for removal at the end.</summary>
    public string Track(string image)
    {
        _images.Add(image);
        return image;
    }

    /// <summary>Builds <paramref name="dockerfile"/> (with extra context files) as <c>lt-test/NAME:RUN</c>.</summary>
    public async Task<string> BuildAsync(string name, string dockerfile, IReadOnlyDictionary<string, string>? files = null)
    {
        var dir = TempDir();
        await File.WriteAllTextAsync(Path.Combine(dir, "Dockerfile"), dockerfile);
        foreach (var (path, text) in files ?? new Dictionary<string, string>())
            await File.WriteAllTextAsync(Path.Combine(dir, path), text);
        var tag = Track(Name(name));
        await engine.DockerAsync(["build", "-q", "--label", $"{EngineFixture.TestLabel}=1", "-t", tag, dir]);
        return tag;
    }

    /// <summary>Runs <c>layertool ARGS</c> in-process.</summary>
    public async Task<(int Code, string Out, string Err)> CliAsync(IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var context = new CliContext(output, error, () => TextReader.Null, TempDir());
        var code = await LayerToolApp.RunAsync(args, context, CancellationToken.None,
            name => environment is not null && environment.TryGetValue(name, out var v) ? v : Environment.GetEnvironmentVariable(name));
        return (code, output.ToString(), error.ToString());
    }

    /// <summary><c>layertool squash IMAGE --onto BASE -t TAG --cache-dir ...</c>; asserts success.</summary>
    public async Task<string> SquashAsync(string image, string onto, string tag, params string[] more)
    {
        Track(tag);
        var (code, stdout, stderr) = await CliAsync(null, ["squash", image, "--onto", onto, "-t", tag, "--cache-dir", CacheDir, .. more]);
        code.ShouldBe(0, stderr);
        return stdout.Trim();
    }

    public async Task<IReadOnlyList<string>> DiffIdsAsync(string image) =>
        (await Images.TryInspectImageAsync(image, CancellationToken.None)).ShouldNotBeNull().DiffIds;

    /// <summary>The merged filesystem of an engine image, from its save.</summary>
    public async Task<FsIndex> IndexAsync(string image)
    {
        using var archive = await EngineImageArchive.OpenAsync(Images, image, null, CancellationToken.None);
        return await ImageReports.IndexAsync(archive.GetImage(), CancellationToken.None);
    }

    /// <summary>The entries of an engine image's top layer.</summary>
    public async Task<IReadOnlyList<LayerEntry>> TopLayerAsync(string image)
    {
        using var archive = await EngineImageArchive.OpenAsync(Images, image, null, CancellationToken.None);
        return await EntriesAsync(archive.GetImage().Layers[^1]);
    }

    public static async Task<IReadOnlyList<LayerEntry>> EntriesAsync(LayerTool.Image.ILayer layer)
    {
        var list = new List<LayerEntry>();
        var reader = new LayerTarReader(layer.Open(CancellationToken.None));
        await using (reader)
        {
            while (await reader.ReadNextAsync(CancellationToken.None) is { } entry) list.Add(entry);
        }
        return list;
    }

    /// <summary>The squashed image's filesystem equals the original's entry by entry, and its layers are the base's plus at most one.</summary>
    public async Task ShouldBeSquashOfAsync(string squashed, string original, string? baseImage, bool expectLayer = true)
    {
        var expected = await IndexAsync(original);
        var actual = await IndexAsync(squashed);
        var differences = LayerVerifier.Compare(expected, actual);
        differences.ShouldBeEmpty($"{squashed} differs from {original}: {string.Join("; ", differences.Take(10))}");
        var baseIds = baseImage is null ? [] : await DiffIdsAsync(baseImage);
        var ids = await DiffIdsAsync(squashed);
        ids.Take(baseIds.Count).ShouldBe(baseIds);
        ids.Count.ShouldBe(baseIds.Count + (expectLayer ? 1 : 0));
    }

    /// <summary>Containers this process's export path made and did not remove (should be none). Export containers are
    /// named for their owner process (<c>layertool-export-PID.START.HOST</c>), so the kill loops' processes, running in
    /// parallel, are not counted.</summary>
    public async Task<string[]> LeakedExportContainersAsync() =>
        (await engine.DockerAsync(["ps", "-aq", "--filter", $"label={DockerImageEngine.ExportLabel}",
            "--filter", $"name=^/layertool-export-{Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)}\\."]))
        .Split('\n', StringSplitOptions.RemoveEmptyEntries);

    public async Task SaveAsync(string path, params string[] images) =>
        await engine.DockerAsync(["save", "-o", path, .. images]);

    public async ValueTask DisposeAsync()
    {
        foreach (var image in _images)
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
