using System.Text;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Layers.Index;
using LayerTool.Image.Layers.Tar;

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

    public static TheoryData<int> Seeds() => RandomSquashTests.SeedRange(200);

    /// <summary>Random stacks (RandomSquashTests' generator): the streaming merge, or its fallback, equals the tree
    /// applier path for path. 4,000 seeds passed locally; 200 run here.</summary>
    [Theory]
    [MemberData(nameof(Seeds))]
    public async Task Layers_merged_on_disk_equal_the_tree_applier(int seed)
    {
        var (baseLayers, layers) = await RandomSquashTests.RandomStackAsync(new Random(seed));
        foreach (var stack in new[] { layers, baseLayers })
        {
            var tree = await FsIndex.FromLayersAsync(stack.Select(DiffHarness.Opener), default);
            var disk = await FsIndex.FromLayersOnDiskAsync([.. stack.Select(DiffHarness.Opener)], null, default);
            LayerVerifier.Compare(tree, disk).ShouldBeEmpty(await DescribeAsync(stack));
            disk.Count.ShouldBe(tree.Count);
            foreach (var e in tree.Entries) disk.Find(e.Path)!.InHardLinkGroup.ShouldBe(e.InHardLinkGroup, e.Path.ToString());
        }
    }

    private static async Task<string> DescribeAsync(IEnumerable<byte[]> stack)
    {
        var sb = new StringBuilder();
        foreach (var layer in stack)
        {
            sb.Append("-- layer:");
            foreach (var (e, _) in await TarBuilder.ReadAllAsync(layer)) sb.Append(' ').Append(e.Name).Append(e.Type == LayerEntryType.HardLink ? "->" + e.LinkTargetText : e.IsDirectory ? "/" : "");
            sb.AppendLine();
        }
        return sb.ToString();
    }

    [Fact]
    public async Task A_docker_like_stack_stays_on_disk_and_a_link_into_a_lower_layer_falls_back()
    {
        var l1 = new TarBuilder().Dir("etc").File("etc/a", "1").File("etc/b", "2").Dir("usr").File("usr/x", "x").Build();
        var l2 = new TarBuilder().Dir("etc").File("etc/a", "3").HardLink("etc/c", "etc/a").Whiteout("etc/b").Opaque("usr").File("usr/y", "y").Build();
        var stack = new[] { l1, l2 };
        var disk = await FsIndex.FromLayersOnDiskAsync([.. stack.Select(DiffHarness.Opener)], null, default);
        disk.IsOnDisk.ShouldBeTrue();
        disk.Entries.Select(e => e.Path.ToString()).ShouldBe(["etc", "etc/a", "etc/c", "usr", "usr/y"]);
        disk.Find(LayerPath.Parse("etc/c"))!.HardLinkOf.ShouldBe(LayerPath.Parse("etc/a"));
        LayerVerifier.Compare(await FsIndex.FromLayersAsync(stack.Select(DiffHarness.Opener), default), disk).ShouldBeEmpty();

        // A link to a file only a lower layer has: the merge does not guess, the tree applier does it.
        var l3 = new TarBuilder().HardLink("usr/z", "usr/y").Build();
        var three = new[] { l1, l2, l3 };
        var fallback = await FsIndex.FromLayersOnDiskAsync([.. three.Select(DiffHarness.Opener)], null, default);
        fallback.IsOnDisk.ShouldBeFalse();
        LayerVerifier.Compare(await FsIndex.FromLayersAsync(three.Select(DiffHarness.Opener), default), fallback).ShouldBeEmpty();
        fallback.Find(LayerPath.Parse("usr/z"))!.HardLinkOf.ShouldBe(LayerPath.Parse("usr/y"));
    }

    [Fact]
    public async Task A_link_before_its_target_in_walk_order_stays_on_disk()
    {
        // A tar in readdir order: the file comes first in the tar, its links sort before it.
        var layer = new TarBuilder().Dir("d").File("d/z", "x").HardLink("d/a", "d/z").HardLink("b", "d/a").File("c", "y").Build();
        var tree = await FsIndex.FromLayersAsync([DiffHarness.Opener(layer)], default);
        var disk = await FsIndex.FromLayersOnDiskAsync([DiffHarness.Opener(layer)], null, default);
        disk.IsOnDisk.ShouldBeTrue();
        LayerVerifier.Compare(tree, disk).ShouldBeEmpty();
        disk.Find(LayerPath.Parse("b"))!.HardLinkOf.ShouldBeNull();
        disk.Find(LayerPath.Parse("d/a"))!.HardLinkOf.ShouldBe(LayerPath.Parse("b"));
        disk.Find(LayerPath.Parse("d/z"))!.HardLinkOf.ShouldBe(LayerPath.Parse("b"));
        disk.Find(LayerPath.Parse("d/z"))!.InHardLinkGroup.ShouldBeTrue();
    }

    [Fact]
    public async Task A_broken_layer_is_refused_as_the_tree_applier_refuses_it()
    {
        var l1 = new TarBuilder().Dir("d").Build();
        var bad = new TarBuilder().HardLink("d/x", "nothing").Build();
        var ex = await Should.ThrowAsync<ImageFormatException>(() => FsIndex.FromLayersOnDiskAsync([DiffHarness.Opener(l1), DiffHarness.Opener(bad)], null, default));
        ex.Message.ShouldContain("nothing");
    }
}
