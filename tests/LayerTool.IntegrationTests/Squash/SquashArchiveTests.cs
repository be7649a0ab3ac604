using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using LayerTool.Image.Formats;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Layers.Index;
using LayerTool.Image.Reports;

namespace LayerTool.IntegrationTests.Squash;

/// <summary>
/// <c>layertool squash --input/--output</c>: no engine involved in the squash itself (the engine only
/// builds and saves the test images), docker-archive and OCI layout out, and bad archives in.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class SquashArchiveTests(EngineFixture engine) : IAsyncLifetime
{
    private readonly SquashHarness _h = new(engine);

    private const string Base = "busybox:latest";

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => _h.DisposeAsync().AsTask();

    private async Task<(string Image, string Archive)> SavedImageAsync()
    {
        var image = await _h.BuildAsync("archive", $"""
            FROM {Base}
            RUN mkdir -p /a/opq /a/gone && echo 1 > /a/opq/x && echo 2 > /a/gone/y && echo t > /a/t && ln /a/t /a/l
            RUN rm -rf /a/opq && mkdir /a/opq && echo 3 > /a/opq/z && rm -rf /a/gone && rm /a/t && rm /bin/cut \
             && cd /a && printf raw > "$(printf 'r\351')" && mknod /a/null c 1 3 && mkfifo /a/fifo
            """);
        var archive = Path.Combine(_h.TempDir(), "images.tar");
        await _h.SaveAsync(archive, image, Base);
        return (image, archive);
    }

    private static async Task<FsIndex> IndexOfAsync(string archive, string? name = null)
    {
        using var opened = ImageArchive.Open(archive);
        return await ImageReports.IndexAsync(opened.GetImage(name), CancellationToken.None);
    }

    [Theory]
    [InlineData("docker", "out.tar")]
    [InlineData("oci", "out-layout")]
    [InlineData("oci", "out-layout.tar")]
    public async Task Squash_from_an_archive_to_an_archive_reproduces_the_filesystem(string format, string output)
    {
        var (image, archive) = await SavedImageAsync();
        var outPath = Path.Combine(_h.TempDir(), output);
        var (code, stdout, stderr) = await _h.CliAsync(null, "squash", image, "--onto", Base, "--input", archive, "--output", outPath,
            "--format", format, "-t", "lt-test/from-archive:1", "--json", "--cache-dir", _h.CacheDir);
        code.ShouldBe(0, stderr);
        var result = JsonDocument.Parse(stdout).RootElement;

        var expected = await IndexOfAsync(archive, image);
        var actual = await IndexOfAsync(outPath);
        LayerVerifier.Compare(expected, actual).ShouldBeEmpty();
        using var written = ImageArchive.Open(outPath);
        var squashed = written.GetImage();
        using var saved = ImageArchive.Open(archive);
        var baseIds = saved.GetImage(Base).Config.DiffIds;
        squashed.Config.DiffIds.Take(baseIds.Count).ShouldBe(baseIds);
        squashed.Config.DiffIds.Count.ShouldBe(baseIds.Count + 1);
        squashed.Config.Digest.ToString().ShouldBe(result.GetProperty("imageId").GetString());

        if (format == "docker")
        {
            // The engine takes the archive as it is.
            var loaded = await engine.DockerAsync(["load", "-i", outPath]);
            _h.Track("lt-test/from-archive:1");
            loaded.ShouldContain("lt-test/from-archive:1");
            await _h.ShouldBeSquashOfAsync("lt-test/from-archive:1", image, Base);
        }
    }

    [Fact]
    public async Task Base_from_a_second_archive_and_reproducible_twice_gives_the_same_image()
    {
        var (image, archive) = await SavedImageAsync();
        var baseArchive = Path.Combine(_h.TempDir(), "base.tar");
        await _h.SaveAsync(baseArchive, Base);
        var env = new Dictionary<string, string> { ["SOURCE_DATE_EPOCH"] = "1650000000" };
        var ids = new List<string>();
        foreach (var cache in new[] { _h.TempDir(), _h.TempDir() })
        {
            var outPath = Path.Combine(_h.TempDir(), "out.tar");
            var (code, stdout, stderr) = await _h.CliAsync(env, "squash", image, "--onto", Base, "--input", archive, "--base-input", baseArchive,
                "--output", outPath, "--reproducible", "--json", "--cache-dir", cache);
            code.ShouldBe(0, stderr);
            var json = JsonDocument.Parse(stdout).RootElement;
            ids.Add(json.GetProperty("imageId").GetString() + " " + json.GetProperty("layerDiffId").GetString());
            ids.Add(Convert.ToHexString(SHA256.HashData(await File.ReadAllBytesAsync(outPath))));
        }
        ids[0].ShouldBe(ids[2]);
        ids[1].ShouldBe(ids[3], "the archive files themselves are byte-identical");
    }

    private async Task<(int Code, string Err, string Output)> SquashArchiveAsync(string archive, string image)
    {
        var outPath = Path.Combine(_h.TempDir(), "out.tar");
        var (code, _, stderr) = await _h.CliAsync(null, "squash", image, "--onto", "scratch", "--input", archive, "--output", outPath, "--cache-dir", _h.CacheDir);
        return (code, stderr, outPath);
    }

    [Fact]
    public async Task A_corrupt_or_truncated_archive_is_a_clear_error_and_leaves_no_output()
    {
        var garbage = Path.Combine(_h.TempDir(), "garbage.tar");
        await File.WriteAllTextAsync(garbage, "this is not an image archive");
        var (code, err, output) = await SquashArchiveAsync(garbage, "x");
        code.ShouldBe(1);
        err.ShouldStartWith("layertool: ");
        File.Exists(output).ShouldBeFalse();

        var (image, archive) = await SavedImageAsync();
        var truncated = Path.Combine(_h.TempDir(), "truncated.tar");
        var bytes = await File.ReadAllBytesAsync(archive);
        await File.WriteAllBytesAsync(truncated, bytes[..(bytes.Length / 2)]);
        (code, err, output) = await SquashArchiveAsync(truncated, image);
        code.ShouldBe(1);
        err.ShouldStartWith("layertool: ");
        err.ShouldNotContain("   at ");
        File.Exists(output).ShouldBeFalse();
        Directory.GetFiles(Path.GetDirectoryName(output)!).ShouldBeEmpty("no partial or temporary output is left behind");
    }

    [Fact]
    public async Task A_layer_whose_bytes_do_not_match_its_digest_is_refused()
    {
        var (image, archive) = await SavedImageAsync();
        var tampered = Path.Combine(_h.TempDir(), "tampered.tar");
        await RewriteArchiveAsync(archive, tampered, (name, data) =>
        {
            if (!name.EndsWith("layer.tar", StringComparison.Ordinal) || data.Length < 2048 || data.Length > 1_000_000) return data;
            var copy = data.ToArray();
            copy[600] ^= 0x55; // inside the first entry's content or the next header
            return copy;
        });
        var (code, err, output) = await SquashArchiveAsync(tampered, image);
        code.ShouldBe(1);
        err.ShouldStartWith("layertool: ");
        File.Exists(output).ShouldBeFalse();
    }

    [Theory]
    [InlineData("../evil", null)]
    [InlineData("/abs/evil", null)]
    [InlineData("ok/hardlink", "../../etc/passwd")]
    public async Task A_layer_with_a_path_or_link_that_escapes_the_root_is_refused(string name, string? hardLinkTarget)
    {
        var archive = Path.Combine(_h.TempDir(), "evil.tar");
        await WriteArchiveAsync(archive, "evil:1", tar =>
        {
            tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "ok/"));
            if (hardLinkTarget is null)
                tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream("x"u8.ToArray()) });
            else
                tar.WriteEntry(new PaxTarEntry(TarEntryType.HardLink, name) { LinkName = hardLinkTarget });
        });
        var (code, err, output) = await SquashArchiveAsync(archive, "evil:1");
        code.ShouldBe(1, err);
        err.ShouldStartWith("layertool: ");
        File.Exists(output).ShouldBeFalse();
    }

    /// <summary>A docker-archive with one image of one layer, written by hand.</summary>
    private static async Task WriteArchiveAsync(string path, string tag, Action<TarWriter> writeLayer)
    {
        var layer = new MemoryStream();
        using (var tar = new TarWriter(layer, TarEntryFormat.Pax, leaveOpen: true)) writeLayer(tar);
        var layerBytes = layer.ToArray();
        var diffId = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(layerBytes));
        var config = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new
        {
            architecture = "amd64",
            os = "linux",
            config = new { },
            rootfs = new { type = "layers", diff_ids = new[] { diffId } },
            history = new[] { new { created_by = "hand-made" } },
        }));
        var configName = Convert.ToHexStringLower(SHA256.HashData(config)) + ".json";
        var manifest = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new[]
        {
            new Dictionary<string, object> { ["Config"] = configName, ["RepoTags"] = new[] { tag }, ["Layers"] = new[] { "l/layer.tar" } },
        }));
        var output = File.Create(path);
        await using (output)
        using (var archive = new TarWriter(output, TarEntryFormat.Ustar))
        {
            archive.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, "l/layer.tar") { DataStream = new MemoryStream(layerBytes) });
            archive.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, configName) { DataStream = new MemoryStream(config) });
            archive.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, "manifest.json") { DataStream = new MemoryStream(manifest) });
        }
    }

    /// <summary>Copies an archive member by member, letting <paramref name="change"/> alter member contents.</summary>
    private static async Task RewriteArchiveAsync(string from, string to, Func<string, byte[], byte[]> change)
    {
        var input = File.OpenRead(from);
        var output = File.Create(to);
        await using (input)
        await using (output)
        {
            using var reader = new TarReader(input);
            using var writer = new TarWriter(output, TarEntryFormat.Pax);
            while (reader.GetNextEntry() is { } entry)
            {
                if (entry.EntryType == TarEntryType.RegularFile && entry.DataStream is { } data)
                {
                    var bytes = new MemoryStream();
                    data.CopyTo(bytes);
                    writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, entry.Name) { DataStream = new MemoryStream(change(entry.Name, bytes.ToArray())) });
                }
                else
                {
                    var copy = new PaxTarEntry(entry.EntryType, entry.Name);
                    if (entry.EntryType is TarEntryType.SymbolicLink or TarEntryType.HardLink) copy.LinkName = entry.LinkName;
                    writer.WriteEntry(copy);
                }
            }
        }
    }
}
