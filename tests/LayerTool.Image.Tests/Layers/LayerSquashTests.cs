using LayerTool.Image.Layers;

namespace LayerTool.Image.Tests.Layers;

public sealed class LayerSquashTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "layertool-test-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task Write_verified_checks_the_layer_it_wrote()
    {
        var b = new TarBuilder().Dir("etc").File("etc/a", "1").File("etc/b", "2").Build();
        var f = await DiffHarness.FlattenAsync([b, new TarBuilder().File("etc/a", "changed").Whiteout("etc/b").Build()]);
        var baseIndex = await FsIndex.FromLayersAsync([DiffHarness.Opener(b)], default);
        Directory.CreateDirectory(_dir);
        await using var layer = new FileStream(Path.Combine(_dir, "layer.tar"), FileMode.Create, FileAccess.ReadWrite);
        await using var reader = new LayerTarReader(new MemoryStream(f));
        var result = await LayerSquash.WriteVerifiedAsync(baseIndex, reader, layer, new LayerDiffOptions { TempDirectory = _dir }, default);
        layer.Length.ShouldBe(result.Size);
        result.Entries.ShouldBe(3);
        Directory.GetFiles(_dir).ShouldBe([Path.Combine(_dir, "layer.tar")], "no temp files left behind");
    }

    [Fact]
    public async Task Index_cache_stores_loads_and_drops_damaged_entries()
    {
        var cache = new FsIndexCache(_dir);
        const string id = "sha256:0123456789abcdef";
        cache.TryLoad(id).ShouldBeNull();
        var index = await FsIndex.FromLayersAsync([DiffHarness.Opener(new TarBuilder().Dir("d").File("d/f", "x").Build())], default);
        cache.Store(id, index);
        LayerVerifier.Compare(index, cache.TryLoad(id)!).ShouldBeEmpty();

        var file = Directory.GetFiles(_dir).Single();
        await File.WriteAllBytesAsync(file, [1, 2, 3]);
        cache.TryLoad(id).ShouldBeNull();
        File.Exists(file).ShouldBeFalse();
        Should.Throw<ArgumentException>(() => cache.TryLoad("../../etc/passwd"));
    }

    [Fact]
    public async Task A_layer_escaping_the_root_is_refused_with_its_path()
    {
        var evil = TarCodecTests.RawTar("../../etc/cron.d/x", '0', "");
        var ex = await Should.ThrowAsync<ImageFormatException>(() => FsIndex.FromLayersAsync([DiffHarness.Opener(evil)], default));
        ex.Message.ShouldContain("../../etc/cron.d/x");
    }
}
