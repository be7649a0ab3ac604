using System.Text;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Layers.Index;
using LayerTool.Image.Layers.Tar;
using LayerTool.Image.Reports;

namespace LayerTool.Image.Tests.Layers;

public class FsIndexTests
{
    private static Task<FsIndex> Merge(params byte[][] layers) => FsIndex.FromLayersAsync(layers.Select(DiffHarness.Opener), default);

    private static string[] Paths(FsIndex index) => [.. index.Entries.Select(e => e.Path.ToString())];

    [Fact]
    public async Task Entries_come_in_docker_walk_order()
    {
        var index = await Merge(new TarBuilder().File("a.b", "1").Dir("a").File("a/z", "2").File("a-", "3").Dir("a/b").File("a/b/c", "4").Build());
        Paths(index).ShouldBe(["a", "a/b", "a/b/c", "a/z", "a-", "a.b"]);
        index.Count.ShouldBe(6);
    }

    [Fact]
    public async Task Whiteouts_opaque_directories_and_replacement_apply_like_docker()
    {
        var l1 = new TarBuilder().Dir("d").File("d/a", "1").Dir("d/sub").File("d/sub/x", "2").File("f", "3").Dir("e").File("e/k", "k").Build();
        var l2 = new TarBuilder()
            .File("d/new", "4").Opaque("d")          // opaque after a same-layer child: the child stays
            .Whiteout("f")
            .Whiteout("missing")                     // whiteout of nothing is fine
            .File("e", "now a file")                 // replaces the directory and its children
            .File(".wh..wh.plnk/ignored", "aufs")    // AUFS bookkeeping is skipped
            .Build();
        var index = await Merge(l1, l2);
        Paths(index).ShouldBe(["d", "d/new", "e"]);
        index.Find(LayerPath.Parse("e"))!.Entry.Type.ShouldBe(LayerEntryType.RegularFile);
    }

    [Fact]
    public async Task Applying_a_layer_to_a_built_index_treats_everything_there_as_lower()
    {
        var index = await Merge(
            new TarBuilder().Dir("d").File("d/a", "1").Build(),
            new TarBuilder().File("d/b", "2").Build(),
            new TarBuilder().File("d/c", "3").Build());
        var opaque = new TarBuilder().Opaque("d").File("d/new", "4").Build();
        await using var reader = new LayerTarReader(new MemoryStream(opaque));
        var applied = await index.ApplyLayerAsync(reader, default);
        Paths(applied).ShouldBe(["d", "d/new"]);
        Paths(index).ShouldBe(["d", "d/a", "d/b", "d/c"]); // the original is untouched
    }

    [Fact]
    public async Task Applying_a_layer_copies_what_it_changes_and_leaves_the_start_index_as_it_was()
    {
        var index = await Merge(new TarBuilder()
            .Dir("a").Dir("a/b").File("a/b/f", "1").File("a/b/g", "2")
            .Dir("o").File("o/x", "3").Dir("o/sub").File("o/sub/y", "4")
            .Dir("keep").File("keep/k", "5").File("top", "6").HardLink("top-link", "top")
            .Build());
        var before = Snapshot(index);

        var layer = new TarBuilder()
            .Dir("a", mode: 0x1C0, uid: 9)                       // directory attributes
            .File("a/b/f", "changed")                            // a deep file replaced
            .Whiteout("a/b/g")                                   // a deep file removed
            .File("a/new/deep/n", "7")                           // missing parents created under a shared directory
            .Opaque("o").File("o/sub/z", "8")                    // opaque directory with a recreated child directory
            .File("top", "replaced")                             // one side of a hard link replaced
            .Build();
        await using var reader = new LayerTarReader(new MemoryStream(layer));
        var applied = await index.ApplyLayerAsync(reader, default);

        Snapshot(index).ShouldBe(before);
        Paths(applied).ShouldBe(["a", "a/b", "a/b/f", "a/new", "a/new/deep", "a/new/deep/n", "keep", "keep/k", "o", "o/sub", "o/sub/z", "top", "top-link"]);
        applied.Find(LayerPath.Parse("a"))!.Entry.Uid.ShouldBe(9);
        index.Find(LayerPath.Parse("a"))!.Entry.Uid.ShouldBe(0);
        applied.Count.ShouldBe(13);
        index.Count.ShouldBe(before.Count);
    }

    private static List<string> Snapshot(FsIndex index) =>
        [.. index.Entries.Select(e => $"{e.Path} {e.Entry.Type} {e.Entry.Mode} {e.Entry.Uid} {Convert.ToHexString(e.ContentHash ?? [])} {e.HardLinkOf}")];

    [Fact]
    public async Task Directory_over_directory_updates_attributes_and_keeps_children()
    {
        var index = await Merge(new TarBuilder().Dir("d").File("d/a", "1").Build(), new TarBuilder().Dir("d", mode: 0x1C0, uid: 7).Build());
        var d = index.Find(LayerPath.Parse("d"))!;
        (d.Entry.Mode, d.Entry.Uid).ShouldBe((0x1C0, 7L));
        Paths(index).ShouldBe(["d", "d/a"]);
    }

    [Fact]
    public async Task Missing_parents_are_created()
    {
        var index = await Merge(new TarBuilder().File("x/y/z", "1").Build());
        Paths(index).ShouldBe(["x", "x/y", "x/y/z"]);
        index.Find(LayerPath.Parse("x"))!.Entry.Mode.ShouldBe(0x1ED);
    }

    [Fact]
    public async Task Hard_links_share_content_and_know_their_group()
    {
        var index = await Merge(new TarBuilder().File("b", "data").HardLink("a", "b").HardLink("c", "b").Build());
        var a = index.Find(LayerPath.Parse("a"))!;
        a.Entry.Type.ShouldBe(LayerEntryType.RegularFile);
        a.HardLinkOf.ShouldBeNull(); // first in walk order
        index.Find(LayerPath.Parse("b"))!.HardLinkOf.ShouldBe(LayerPath.Parse("a"));
        index.Find(LayerPath.Parse("c"))!.HardLinkOf.ShouldBe(LayerPath.Parse("a"));
        a.ContentHash.ShouldBe(index.Find(LayerPath.Parse("c"))!.ContentHash);
    }

    [Fact]
    public async Task A_hard_link_to_nothing_is_refused()
    {
        var ex = await Should.ThrowAsync<ImageFormatException>(() => Merge(new TarBuilder().HardLink("a", "nope").Build()));
        ex.Message.ShouldContain("'a'");
        ex.Message.ShouldContain("nope");
    }

    [Fact]
    public async Task On_disk_form_round_trips_and_detects_damage()
    {
        var latin = LayerPath.FromBytes([.. "n"u8, 0xFF]);
        var index = await Merge(new TarBuilder()
            .Dir("d", mode: 0x3FF | 0x200).File("d/f", "x", uid: 5_000_000).HardLink("d/g", "d/f").Symlink("d/l", "/x/y")
            .Device("d/null", LayerEntryType.CharacterDevice, 1, 3).Fifo("d/p")
            .File(latin, [1, 2], xattrs: LayerEntry.CreateXattrs([new("user.a", [0, 255])])).Build());
        using var ms = new MemoryStream();
        FsIndexSerializer.Write(index, ms);
        var again = FsIndexSerializer.Read(new MemoryStream(ms.ToArray()));
        LayerVerifier.Compare(index, again).ShouldBeEmpty();
        again.Find(latin)!.Entry.Xattrs["user.a"].ShouldBe(new byte[] { 0, 255 });
        again.Find(LayerPath.Parse("d/f"))!.Entry.ModificationTime.ShouldBe(TarBuilder.Time);

        var bytes = ms.ToArray();
        bytes[bytes.Length / 2] ^= 0x40;
        Should.Throw<ImageFormatException>(() => FsIndexSerializer.Read(new MemoryStream(bytes)));
        Should.Throw<ImageFormatException>(() => FsIndexSerializer.Read(new MemoryStream(ms.ToArray()[..^40])));
        Should.Throw<ImageFormatException>(() => FsIndexSerializer.Read(new MemoryStream(Encoding.ASCII.GetBytes("garbage"))));
    }

    [Fact]
    public async Task Comparison_lists_added_changed_and_deleted_paths()
    {
        var a = await Merge(new TarBuilder().File("same", "1").File("changed", "1").File("gone", "1").Build());
        var b = await Merge(new TarBuilder().File("same", "1", mtime: TarBuilder.Time.AddDays(1)).File("changed", "2").File("new", "1").Build());
        var changes = FsComparison.Compare(a, b);
        changes.Select(c => (c.Path.ToString(), c.Kind)).ShouldBe([("changed", FsChangeKind.Changed), ("gone", FsChangeKind.Deleted), ("new", FsChangeKind.Added)]);
        changes[0].Detail.ShouldBe("content differs");
    }

    [Fact]
    public async Task Layer_usage_counts_wasted_bytes_once()
    {
        var l1 = new TarBuilder().File("big", new string('x', 1000)).File("keep", "k").Build();
        var l2 = new TarBuilder().File("big", new string('y', 500)).Build();  // hides l1's 1000 bytes
        var l3 = new TarBuilder().Whiteout("big").File("tmp", "123").Build(); // hides l2's 500 bytes
        var l4 = new TarBuilder().Whiteout("tmp").Build();
        var usage = await LayerUsageAnalyzer.AnalyzeAsync([.. new[] { l1, l2, l3, l4 }.Select(DiffHarness.Opener)], default);
        usage.Select(u => u.WastedBytes).ShouldBe([1000L, 500L, 3L, 0L]);
        usage.Select(u => u.FileBytes).ShouldBe([1001L, 500L, 3L, 0L]);
        usage[0].TarSize.ShouldBe(l1.Length);
    }

    [Fact]
    public async Task Init_path_overlay_follows_a_hard_link_to_a_sibling()
    {
        var image = new TarBuilder().Dir("etc").File("etc/hosts.orig", "orig hosts").HardLink("etc/hosts", "etc/hosts.orig")
            .File("etc/big", new string('b', 100_000)).Build();
        var replacements = await InitPathOverlay.CollectFromLayersAsync([DiffHarness.Opener(image)], InitPathOverlay.DefaultPaths, default);
        replacements.Select(r => r.Entry.Name).ShouldBe(["etc", "etc/hosts"]);
        System.Text.Encoding.UTF8.GetString(replacements[1].Content).ShouldBe("orig hosts");
    }

    [Fact]
    public async Task Init_path_overlay_takes_the_images_own_entries()
    {
        var image = new TarBuilder().Dir("etc", mode: 0x1C0).File("etc/hosts", "image hosts").File("etc/os-release", "debian").Dir("proc").Build();
        var export = new TarBuilder()
            .File(".dockerenv", "").Dir("dev").File("dev/console", "").Dir("dev/pts").Dir("dev/shm")
            .Dir("etc").File("etc/hostname", "").File("etc/hosts", "engine hosts").File("etc/mtab", "").File("etc/os-release", "debian").File("etc/resolv.conf", "")
            .Dir("proc").Dir("sys").Build();
        var replacements = await InitPathOverlay.CollectFromLayersAsync([DiffHarness.Opener(image)], InitPathOverlay.DefaultPaths, default);
        await using var reader = new LayerTarReader(new MemoryStream(export));
        var overlay = new InitPathOverlay(reader, InitPathOverlay.DefaultPaths, replacements);
        var index = await FsIndex.FromFlattenedAsync(overlay, default);
        Paths(index).ShouldBe(["etc", "etc/hosts", "etc/os-release", "proc"]);
        index.Find(LayerPath.Parse("etc"))!.Entry.Mode.ShouldBe(0x1C0);
        var imageIndex = await Merge(image);
        LayerVerifier.Compare(imageIndex, index).ShouldBeEmpty();
    }
}
