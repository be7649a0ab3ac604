using System.Formats.Tar;
using LayerTool.Build;
using LayerTool.Docker.Images;
using LayerTool.Docker;

namespace LayerTool.IntegrationTests.Squash;

/// <summary>The engine adapter's image calls against the real engine.</summary>
[Collection(EngineCollection.Name)]
public sealed class EngineImagesTests(EngineFixture engine)
{
    private readonly string _run = Guid.NewGuid().ToString("N")[..12];

    private DockerImageEngine Images => new(engine.Connection, new Dictionary<string, string>
    {
        [EngineFixture.TestLabel] = "1",
        ["layertool.test.run"] = _run,
    });

    private async Task<string[]> LeakedContainersAsync() =>
        (await engine.DockerAsync(["ps", "-aq", "--filter", $"label=layertool.test.run={_run}"]))
        .Split('\n', StringSplitOptions.RemoveEmptyEntries);

    [Fact]
    public async Task Inspect_reports_layers_and_the_graph_driver()
    {
        var image = await Images.TryInspectImageAsync("busybox:latest", CancellationToken.None);
        image.ShouldNotBeNull();
        image.Id.ShouldStartWith("sha256:");
        image.DiffIds.ShouldNotBeEmpty();
        image.RepoTags.ShouldContain("busybox:latest");
        image.GraphDriver.ShouldNotBeNull();
        image.GraphDriver.Name.ShouldBe("overlay2");
    }

    [Fact]
    public async Task An_unknown_image_is_null_on_inspect_and_a_clear_error_on_save()
    {
        (await Images.TryInspectImageAsync("layertool-test/no-such-image:1", CancellationToken.None)).ShouldBeNull();
        var e = await Should.ThrowAsync<EngineException>(() => Images.SaveImageAsync("layertool-test/no-such-image:1", CancellationToken.None));
        e.Message.ShouldContain("no such image: layertool-test/no-such-image:1");
    }

    [Fact]
    public async Task The_store_here_is_the_graph_driver_store()
    {
        (await Images.GetStoreKindAsync(CancellationToken.None)).ShouldBe(ImageStoreKind.GraphDriver);
        DockerImageEngine.StoreKindFrom([["driver-type", "io.containerd.snapshotter.v1"]]).ShouldBe(ImageStoreKind.Containerd);
        DockerImageEngine.StoreKindFrom([["Backing Filesystem", "extfs"]]).ShouldBe(ImageStoreKind.GraphDriver);
    }

    [Fact]
    public async Task Export_streams_the_filesystem_in_walk_order_and_removes_its_container()
    {
        var names = await Images.ExportImageFilesystemAsync("busybox:latest", async (stream, ct) =>
        {
            var list = new List<string>();
            using var reader = new TarReader(stream);
            while (await reader.GetNextEntryAsync(false, ct) is { } entry) list.Add(entry.Name.TrimEnd('/'));
            return list;
        }, CancellationToken.None);
        names.ShouldContain("bin/busybox");
        names.ShouldContain(".dockerenv"); // the init layer's stub: why the image source must patch these paths
        (await LeakedContainersAsync()).ShouldBeEmpty();
    }

    [Fact]
    public async Task Export_removes_its_container_when_the_reader_fails_or_is_cancelled()
    {
        await Should.ThrowAsync<InvalidDataException>(() => Images.ExportImageFilesystemAsync<int>("busybox:latest",
            (_, _) => throw new InvalidDataException("reader failed"), CancellationToken.None));
        using var cts = new CancellationTokenSource();
        await Should.ThrowAsync<OperationCanceledException>(() => Images.ExportImageFilesystemAsync<int>("busybox:latest",
            async (stream, ct) =>
            {
                var buffer = new byte[512];
                await stream.ReadExactlyAsync(buffer, ct);
                await cts.CancelAsync();
                ct.ThrowIfCancellationRequested();
                return 0;
            }, cts.Token));
        (await LeakedContainersAsync()).ShouldBeEmpty();
    }

    [Fact]
    public async Task Export_works_for_an_image_without_a_command()
    {
        var tag = $"layertool-test/nocmd:{_run}";
        var dir = Directory.CreateTempSubdirectory("layertool-nocmd-");
        try
        {
            await File.WriteAllTextAsync(Path.Combine(dir.FullName, "hello"), "hi");
            var tar = Path.Combine(dir.FullName, "rootfs.tar");
            await TarFile.CreateFromDirectoryAsync(dir.FullName, tar + ".tmp", false);
            File.Move(tar + ".tmp", tar);
            await engine.DockerAsync(["import", "-c", $"LABEL {EngineFixture.TestLabel}=1", tar, tag]);
            var n = await Images.ExportImageFilesystemAsync(tag, async (stream, ct) =>
            {
                using var reader = new TarReader(stream);
                var count = 0;
                while (await reader.GetNextEntryAsync(false, ct) is { } entry) count += entry.Name == "hello" ? 1 : 0;
                return count;
            }, CancellationToken.None);
            n.ShouldBe(1);
        }
        finally
        {
            await Images.RemoveImageAsync(tag, CancellationToken.None);
            dir.Delete(true);
        }
        (await LeakedContainersAsync()).ShouldBeEmpty();
    }

    [Fact]
    public async Task Export_of_an_unknown_image_is_a_clear_error()
    {
        var e = await Should.ThrowAsync<EngineException>(() => Images.ExportImageFilesystemAsync("layertool-test/no-such-image:2",
            (_, _) => Task.FromResult(0), CancellationToken.None));
        e.Message.ShouldContain("no such image");
        (await LeakedContainersAsync()).ShouldBeEmpty();
    }

    [Fact]
    public async Task Load_of_a_corrupt_archive_is_a_clear_error()
    {
        using var garbage = new MemoryStream("this is not a tar archive, just some bytes"u8.ToArray());
        var e = await Should.ThrowAsync<EngineException>(() => Images.LoadImageAsync(garbage, CancellationToken.None));
        e.Message.ShouldContain("load");
    }

    [Fact]
    public async Task Save_load_tag_and_remove_round_trip()
    {
        var tag = $"layertool-test/roundtrip:{_run}";
        var busybox = await Images.TryInspectImageAsync("busybox:latest", CancellationToken.None);
        await Images.TagImageAsync("busybox:latest", tag, CancellationToken.None);
        try
        {
            var archive = new MemoryStream();
            await using (var save = await Images.SaveImageAsync(tag, CancellationToken.None))
                await save.CopyToAsync(archive);
            archive.Position = 0;
            await Images.RemoveImageAsync(tag, CancellationToken.None);
            (await Images.TryInspectImageAsync(tag, CancellationToken.None)).ShouldBeNull();
            var lines = await Images.LoadImageAsync(archive, CancellationToken.None);
            lines.ShouldContain(l => l.Contains(tag, StringComparison.Ordinal));
            (await Images.TryInspectImageAsync(tag, CancellationToken.None))!.Id.ShouldBe(busybox!.Id);
        }
        finally
        {
            await Images.RemoveImageAsync(tag, CancellationToken.None);
        }
        await Images.RemoveImageAsync(tag, CancellationToken.None); // removing twice is fine
    }

    [Fact]
    public void Tags_split_at_the_colon_after_the_last_slash()
    {
        DockerImageEngine.SplitTag("localhost:5000/a/b").ShouldBe(("localhost:5000/a/b", "latest"));
        DockerImageEngine.SplitTag("localhost:5000/a/b:v1").ShouldBe(("localhost:5000/a/b", "v1"));
        DockerImageEngine.SplitTag("app").ShouldBe(("app", "latest"));
    }
}
