using System.Text;
using LayerTool.Image.Layers;

namespace LayerTool.Image.Tests.Layers;

/// <summary>The on-disk index (what a squash walks) answers exactly as the in-memory tree does.</summary>
public class FsIndexStoreTests
{
    private static async Task<FsIndex> Tree(params byte[][] layers) =>
        await FsIndex.FromLayersAsync(layers.Select(DiffHarness.Opener), CancellationToken.None);

    private static FsIndex OnDisk(FsIndex index)
    {
        using var ms = new MemoryStream();
        FsIndexSerializer.Write(index, ms);
        ms.Position = 0;
        return FsIndexSerializer.Read(ms);
    }

    [Fact]
    public async Task Every_path_reads_back_the_same_with_hard_link_groups()
    {
        var tree = await Tree(new TarBuilder()
            .Dir("a").File("a/f", "x").HardLink("a/g", "a/f").HardLink("b/h", "a/f").Fifo("c").HardLink("d", "c")
            .File("e", "y").Symlink("s", "/x").Build(),
            new TarBuilder().Whiteout("a/f").Build());
        var disk = OnDisk(tree);
        disk.IsOnDisk.ShouldBeTrue();
        disk.Count.ShouldBe(tree.Count);
        LayerVerifier.Compare(tree, disk).ShouldBeEmpty();
        foreach (var e in tree.Entries)
        {
            var d = disk.Find(e.Path).ShouldNotBeNull(e.Path.ToString());
            LayerVerifier.Describe(e, d).ShouldBeNull(e.Path.ToString());
            d.InHardLinkGroup.ShouldBe(e.InHardLinkGroup, e.Path.ToString());
        }
        // a/f went; a/g is the group's first now, b/h follows it.
        disk.Find(LayerPath.Parse("a/g"))!.HardLinkOf.ShouldBeNull();
        disk.Find(LayerPath.Parse("a/g"))!.InHardLinkGroup.ShouldBeTrue();
        disk.Find(LayerPath.Parse("b/h"))!.HardLinkOf.ShouldBe(LayerPath.Parse("a/g"));
        disk.Find(LayerPath.Parse("d"))!.HardLinkOf.ShouldBe(LayerPath.Parse("c"));
        disk.Find(LayerPath.Parse("e"))!.InHardLinkGroup.ShouldBeFalse();
        disk.Find(LayerPath.Parse("zz")).ShouldBeNull();
        disk.Find(LayerPath.Parse("0")).ShouldBeNull();
        // And back into memory (what a builder on top of it does).
        LayerVerifier.Compare(tree, await disk.ApplyLayerAsync(new LayerTarReader(new MemoryStream(new TarBuilder().Build())), default)).ShouldBeEmpty();
    }

    [Fact]
    public async Task Lookups_work_across_many_sparse_keys()
    {
        var b = new TarBuilder().Dir("d");
        for (var i = 0; i < 1000; i++) b.File($"d/f{i:D4}", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        b.HardLink("e", "d/f0500");
        var tree = await Tree(b.Build());
        var disk = OnDisk(tree);
        for (var i = 0; i < 1000; i += 37) disk.Find(LayerPath.Parse($"d/f{i:D4}"))!.ContentHashHex.ShouldBe(tree.Find(LayerPath.Parse($"d/f{i:D4}"))!.ContentHashHex);
        disk.Find(LayerPath.Parse("e"))!.HardLinkOf.ShouldBe(LayerPath.Parse("d/f0500"));
        disk.Find(LayerPath.Parse("d/f10000")).ShouldBeNull();
    }

    [Fact]
    public async Task A_flattened_stream_gets_missing_parents_and_must_be_in_walk_order()
    {
        var flat = new TarBuilder().File("a/b/c", "x").File("a/d", "y").Build();
        var disk = await FsIndex.FromFlattenedOnDiskAsync(new LayerTarReader(new MemoryStream(flat)), null, default);
        var tree = await FsIndex.FromFlattenedAsync(new LayerTarReader(new MemoryStream(flat)), default);
        LayerVerifier.Compare(tree, disk).ShouldBeEmpty();
        disk.Entries.Select(e => e.Path.ToString()).ShouldBe(["a", "a/b", "a/b/c", "a/d"]);

        var unordered = new TarBuilder().File("b", "x").File("a", "y").Build();
        var ex = await Should.ThrowAsync<ImageFormatException>(() => FsIndex.FromFlattenedOnDiskAsync(new LayerTarReader(new MemoryStream(unordered)), null, default));
        ex.Message.ShouldContain("walk order");
        var under = new TarBuilder().File("a", "x").File("a/b", "y").Build();
        (await Should.ThrowAsync<ImageFormatException>(() => FsIndex.FromFlattenedOnDiskAsync(new LayerTarReader(new MemoryStream(under)), null, default)))
            .Message.ShouldContain("not a directory");
        var dangling = new TarBuilder().HardLink("a", "z").Build();
        (await Should.ThrowAsync<ImageFormatException>(() => FsIndex.FromFlattenedOnDiskAsync(new LayerTarReader(new MemoryStream(dangling)), null, default)))
            .Message.ShouldContain("'z'");
    }

    [Fact]
    public async Task A_damaged_or_foreign_file_is_refused()
    {
        var tree = await Tree(new TarBuilder().Dir("d").File("d/f", "x").Build());
        using var ms = new MemoryStream();
        FsIndexSerializer.Write(tree, ms);
        var bytes = ms.ToArray();
        for (var at = 0; at < bytes.Length; at += 7)
        {
            var copy = bytes.ToArray();
            copy[at] ^= 0x01;
            Should.Throw<ImageFormatException>(() => FsIndexSerializer.Read(new MemoryStream(copy)), $"byte {at}");
        }
        Should.Throw<ImageFormatException>(() => FsIndexSerializer.Read(new MemoryStream(bytes[..^1])));
        Should.Throw<ImageFormatException>(() => FsIndexSerializer.Read(new MemoryStream("LTFSIDX1\n"u8.ToArray())));
        Should.Throw<ImageFormatException>(() => FsIndexSerializer.Read(new MemoryStream(Encoding.ASCII.GetBytes(new string('x', 100)))));
    }
}
