using System.Text;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Content;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Layers.Index;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.Image.Tests.Layers;

public class LayerDiffTests
{
    private static byte[] Base() => new TarBuilder()
        .Dir("bin").File("bin/sh", "shell", mode: 0x1ED).File("bin/ls", "list", mode: 0x1ED)
        .Dir("etc").File("etc/passwd", "root:x:0:0").File("etc/hosts", "127.0.0.1 localhost")
        .Dir("usr").Dir("usr/share").Dir("usr/share/doc").File("usr/share/doc/a", "A").File("usr/share/doc/b", "B")
        .Dir("usr/share/doc/sub").File("usr/share/doc/sub/c", "C")
        .Dir("var").Dir("var/lib").File("var/lib/state", "s1")
        .Build();

    [Fact]
    public async Task Onto_scratch_the_layer_holds_everything()
    {
        var final = new TarBuilder()
            .Dir("a", mode: 0x3FF | 0x200).File("a/f", "x", mode: 0x9ED).Symlink("a/l", "/abs/target").HardLink("a/h", "a/f", 0x9ED)
            .Device("a/null", LayerEntryType.CharacterDevice, 1, 3).Device("a/sda", LayerEntryType.BlockDevice, 8, 1).Fifo("a/p")
            .Build();
        var o = await DiffHarness.SquashAsync([], [final]);
        o.Names.ShouldBe(["a/", "a/f", "a/h", "a/l", "a/null", "a/p", "a/sda"]);
        o.Get("a/").Mode.ShouldBe(0x3FF | 0x200);
        o.Get("a/f").Mode.ShouldBe(0x9ED);
        o.Get("a/h").Type.ShouldBe(LayerEntryType.HardLink);
        o.Result.Whiteouts.ShouldBe(0);
    }

    [Fact]
    public async Task Unchanged_image_gives_an_empty_layer()
    {
        var b = Base();
        var o = await DiffHarness.SquashAsync([b], [b]);
        o.Entries.ShouldBeEmpty();
        o.Layer.Length.ShouldBe(1024);
    }

    [Fact]
    public async Task Whiteouts_of_base_content_and_one_whiteout_per_deleted_directory()
    {
        var b = Base();
        var layer = new TarBuilder().Whiteout("etc/hosts").Whiteout("usr/share/doc").Build();
        var o = await DiffHarness.SquashAsync([b], [b, layer]);
        o.Names.ShouldBe(["etc/", "etc/.wh.hosts", "usr/", "usr/share/", "usr/share/.wh.doc"]);
        o.Result.Whiteouts.ShouldBe(2);
    }

    [Fact]
    public async Task Opaque_directory_in_a_squashed_layer_becomes_explicit_whiteouts()
    {
        var b = Base();
        // The opaque marker comes after the new child: readers must accept it anywhere.
        var layer = new TarBuilder().Dir("usr/share/doc").File("usr/share/doc/new", "N").Opaque("usr/share/doc").Build();
        var o = await DiffHarness.SquashAsync([b], [b, layer]);
        o.Names.ShouldBe(["usr/", "usr/share/", "usr/share/doc/", "usr/share/doc/.wh.a", "usr/share/doc/.wh.b", "usr/share/doc/new", "usr/share/doc/.wh.sub"]);
        o.Final.Find(LayerPath.Parse("usr/share/doc/a")).ShouldBeNull();
    }

    [Fact]
    public async Task Directory_deleted_and_recreated_with_other_children()
    {
        var b = Base();
        var l2 = new TarBuilder().Whiteout("usr/share/doc").Build();
        var l3 = new TarBuilder().Dir("usr/share/doc", mode: 0x1C0).File("usr/share/doc/a", "other A").File("usr/share/doc/z", "Z").Build();
        var o = await DiffHarness.SquashAsync([b], [b, l2, l3]);
        o.Names.ShouldBe(["usr/", "usr/share/", "usr/share/doc/", "usr/share/doc/a", "usr/share/doc/.wh.b", "usr/share/doc/.wh.sub", "usr/share/doc/z"]);
    }

    [Fact]
    public async Task Type_changes_between_directory_file_and_symlink()
    {
        var b = Base();
        var l2 = new TarBuilder()
            .Whiteout("usr/share/doc").File("usr/share/doc", "now a file")   // dir -> file (children go with it)
            .Whiteout("bin/sh").Dir("bin/sh").File("bin/sh/inner", "i")       // file -> dir
            .Whiteout("bin/ls").Symlink("bin/ls", "busybox")                 // file -> symlink
            .Build();
        var l3 = new TarBuilder().Whiteout("var/lib").Symlink("var/lib", "/data").Build(); // dir -> symlink
        var o = await DiffHarness.SquashAsync([b], [b, l2, l3]);
        o.Names.ShouldBe(["bin/", "bin/ls", "bin/sh/", "bin/sh/inner", "usr/", "usr/share/", "usr/share/doc", "var/", "var/lib"]);
        o.Result.Whiteouts.ShouldBe(0);
    }

    [Fact]
    public async Task Mode_only_and_owner_only_changes_are_changes()
    {
        var b = Base();
        var l2 = new TarBuilder()
            .File("bin/sh", "shell", mode: 0x9ED)               // setuid added
            .File("etc/passwd", "root:x:0:0", uid: 1000, gid: 1000)
            .Dir("var", mode: 0x3FF | 0x200)                    // sticky dir
            .Build();
        var o = await DiffHarness.SquashAsync([b], [b, l2]);
        o.Names.ShouldBe(["bin/", "bin/sh", "etc/", "etc/passwd", "var/"]);
        o.Get("etc/passwd").Uid.ShouldBe(1000);
        o.Get("var/").Mode.ShouldBe(0x3FF | 0x200);
    }

    [Fact]
    public async Task Same_size_same_mtime_rewrite_is_caught_and_identical_rewrite_is_not()
    {
        var b = Base();
        var l2 = new TarBuilder()
            .File("etc/passwd", "root:y:0:0")                              // same size, same mtime, other bytes
            .File("etc/hosts", "127.0.0.1 localhost", mtime: TarBuilder.Time.AddDays(3)) // same bytes, new mtime
            .Build();
        var o = await DiffHarness.SquashAsync([b], [b, l2]);
        o.Names.ShouldBe(["etc/", "etc/passwd"]);
        Encoding.UTF8.GetString(o.ContentOf("etc/passwd")).ShouldBe("root:y:0:0");
    }

    [Fact]
    public async Task Big_files_spill_while_compared()
    {
        var big = new byte[200_000];
        new Random(1).NextBytes(big);
        var other = (byte[])big.Clone();
        other[123_456] ^= 1;
        var b = new TarBuilder().File(LayerPath.Parse("big"), big).File(LayerPath.Parse("same"), big).Build();
        var l2 = new TarBuilder().File(LayerPath.Parse("big"), other).File(LayerPath.Parse("same"), big).Build();
        var o = await DiffHarness.SquashAsync([b], [b, l2], new LayerDiffOptions { SpillThreshold = 1000 });
        o.Names.ShouldBe(["big"]);
        o.ContentOf("big").ShouldBe(other);
    }

    [Fact]
    public async Task Names_containing_wh_are_ordinary()
    {
        var b = new TarBuilder().Dir("x.wh.y").File("x.wh.y/foo.wh.bar", "1").File("keep", "k").Build();
        var l2 = new TarBuilder().File("x.wh.y/foo.wh.bar", "2").File("a.wh.", "3").Build();
        var o = await DiffHarness.SquashAsync([b], [b, l2]);
        o.Names.ShouldBe(["a.wh.", "x.wh.y/", "x.wh.y/foo.wh.bar"]);
    }

    [Fact]
    public async Task Parents_of_a_deep_change_are_written_first_with_their_metadata()
    {
        var b = Base();
        var l2 = new TarBuilder().File("usr/share/doc/sub/c", "changed").Build();
        var o = await DiffHarness.SquashAsync([b], [b, l2]);
        o.Names.ShouldBe(["usr/", "usr/share/", "usr/share/doc/", "usr/share/doc/sub/", "usr/share/doc/sub/c"]);
    }

    [Fact]
    public async Task Hard_link_whose_target_was_deleted_later()
    {
        var b = Base();
        var l2 = new TarBuilder().File("opt-a", "payload").HardLink("opt-b", "opt-a").Build();
        var l3 = new TarBuilder().Whiteout("opt-a").Build();
        var o = await DiffHarness.SquashAsync([b], [b, l2, l3]);
        o.Names.ShouldBe(["opt-b"]);
        o.Get("opt-b").Type.ShouldBe(LayerEntryType.RegularFile);
        Encoding.UTF8.GetString(o.ContentOf("opt-b")).ShouldBe("payload");
    }

    [Fact]
    public async Task Hard_link_whose_target_was_overwritten_later()
    {
        var b = Base();
        var l2 = new TarBuilder().File("a", "old").HardLink("b", "a").HardLink("c", "a").Build();
        var l3 = new TarBuilder().File("a", "new").Build();
        var o = await DiffHarness.SquashAsync([b], [b, l2, l3]);
        o.Names.ShouldBe(["a", "b", "c"]);
        o.Get("b").Type.ShouldBe(LayerEntryType.RegularFile);
        o.Get("c").Type.ShouldBe(LayerEntryType.HardLink);
        o.Get("c").HardLinkTarget.ShouldBe(LayerPath.Parse("b"));
    }

    [Fact]
    public async Task Hard_link_to_a_file_that_lives_in_the_base_brings_the_target_along()
    {
        var b = Base();
        var l2 = new TarBuilder().HardLink("bin/zz-link", "bin/ls", 0x1ED).Build();
        var o = await DiffHarness.SquashAsync([b], [b, l2]);
        o.Names.ShouldBe(["bin/", "bin/ls", "bin/zz-link"]);
        Encoding.UTF8.GetString(o.ContentOf("bin/ls")).ShouldBe("list");
        o.Get("bin/zz-link").HardLinkTarget.ShouldBe(LayerPath.Parse("bin/ls"));
    }

    [Fact]
    public async Task Reopening_works_on_a_tar_that_cannot_seek()
    {
        var b = Base();
        var l2 = new TarBuilder().HardLink("bin/zz-link", "bin/ls", 0x1ED).HardLink("etc/zz", "etc/hosts").Build();
        var flat = await DiffHarness.FlattenAsync([b, l2]);
        var opens = 0;
        var reopen = ContentReopeners.FromTar(_ =>
        {
            opens++;
            return Task.FromResult<Stream>(new TarCodecTests.NonSeekable(flat));
        });
        var o = await DiffHarness.SquashAsync([b], [b, l2], new LayerDiffOptions { ReopenContent = reopen });
        o.Names.ShouldBe(["bin/", "bin/ls", "bin/zz-link", "etc/", "etc/hosts", "etc/zz"]);
        opens.ShouldBe(4); // a probe and a scan per file
    }

    [Fact]
    public async Task Hard_link_group_grown_in_the_base_rewrites_the_whole_group()
    {
        var b = new TarBuilder().File("a", "x").HardLink("c", "a").Build();
        var l2 = new TarBuilder().HardLink("b", "a").Build();
        var o = await DiffHarness.SquashAsync([b], [b, l2]);
        o.Names.ShouldBe(["a", "b", "c"]);
    }

    [Fact]
    public async Task Hard_link_broken_into_copies_is_a_change()
    {
        var b = new TarBuilder().File("a", "x").HardLink("b", "a").HardLink("c", "a").Build();
        var l2 = new TarBuilder().File("b", "x").Build(); // same bytes, but no longer the same file
        var o = await DiffHarness.SquashAsync([b], [b, l2]);
        o.Names.ShouldBe(["b"]);
        var unchanged = await DiffHarness.SquashAsync([b], [b]);
        unchanged.Entries.ShouldBeEmpty();
    }

    [Fact]
    public async Task Hard_linked_fifos_keep_their_group()
    {
        var b = new TarBuilder().Fifo("p").HardLink("q", "p").Build();
        var split = new TarBuilder().Fifo("q").Build(); // q becomes its own FIFO
        (await DiffHarness.SquashAsync([b], [b, split])).Names.ShouldBe(["q"]);
        var grown = new TarBuilder().HardLink("r", "p").Build();
        (await DiffHarness.SquashAsync([b], [b, grown])).Names.ShouldBe(["p", "q", "r"]);
        (await DiffHarness.SquashAsync([b], [b])).Entries.ShouldBeEmpty();
    }

    [Fact]
    public async Task Without_a_reopener_the_rare_hard_link_case_fails_clearly()
    {
        var b = Base();
        var final = await DiffHarness.FlattenAsync([b, new TarBuilder().HardLink("bin/zz", "bin/ls").Build()]);
        var baseIndex = await FsIndex.FromLayersAsync([DiffHarness.Opener(b)], default);
        await using var reader = new LayerTarReader(new MemoryStream(final));
        var ex = await Should.ThrowAsync<ImageFormatException>(() => LayerDiff.WriteAsync(baseIndex, reader, new MemoryStream(), null, default));
        ex.Message.ShouldContain("bin/ls");
    }

    [Fact]
    public async Task Devices_fifos_setuid_and_sticky_survive()
    {
        var b = Base();
        var l2 = new TarBuilder().Dir("dev").Device("dev/null", LayerEntryType.CharacterDevice, 1, 3).Device("dev/loop0", LayerEntryType.BlockDevice, 7, 0)
            .Fifo("dev/initctl").Dir("tmp", mode: 0x3FF | 0x200).File("bin/su", "su", mode: 0x9ED).File("bin/wall", "w", mode: 0x5ED).Build();
        var l3 = new TarBuilder().Device("dev/null", LayerEntryType.CharacterDevice, 1, 5).Build();
        var o = await DiffHarness.SquashAsync([b], [b, l2, l3]);
        o.Get("dev/null").DevMinor.ShouldBe(5);
        o.Get("tmp/").Mode.ShouldBe(0x3FF | 0x200);
        o.Get("bin/su").Mode.ShouldBe(0x9ED);
        o.Get("bin/wall").Mode.ShouldBe(0x5ED);
    }

    [Fact]
    public async Task Xattrs_are_compared()
    {
        var cap = LayerEntry.CreateXattrs([new("security.capability", [1, 2, 3])]);
        var b = new TarBuilder().File(LayerPath.Parse("ping"), [1]).Build();
        var l2 = new TarBuilder().File(LayerPath.Parse("ping"), [1], xattrs: cap).Build();
        var o = await DiffHarness.SquashAsync([b], [b, l2]);
        o.Get("ping").Xattrs["security.capability"].ShouldBe(new byte[] { 1, 2, 3 });
    }

    [Fact]
    public async Task Long_and_non_utf8_names()
    {
        var longPath = LayerPath.Parse(string.Join('/', Enumerable.Repeat("segment-of-forty-characters-long-padding", 7)));
        var latin = LayerPath.FromBytes([.. "caf"u8, 0xE9]);
        var b = new TarBuilder().File(latin, [1]).Build();
        var l2 = new TarBuilder().File(longPath, [2]).File(latin, [3]).Build();
        var o = await DiffHarness.SquashAsync([b], [b, l2]);
        o.Entries.Select(e => e.Entry.Path).ShouldContain(longPath);
        o.Entries.Select(e => e.Entry.Path).ShouldContain(latin);
        longPath.Bytes.Length.ShouldBeGreaterThan(250);
    }

    [Fact]
    public async Task Thirty_five_layers_of_churn()
    {
        var b = Base();
        var layers = new List<byte[]> { b };
        for (var i = 0; i < 35; i++)
        {
            var t = new TarBuilder().Dir($"work{i % 4}").File($"work{i % 4}/f{i % 7}", $"v{i}").File("var/lib/state", i % 5 == 0 ? "s1" : $"s{i}");
            if (i % 6 == 3) t.Whiteout($"work{(i + 1) % 4}");
            if (i % 9 == 4) t.HardLink($"work{i % 4}/link{i}", $"work{i % 4}/f{i % 7}");
            layers.Add(t.Build());
        }
        var o = await DiffHarness.SquashAsync([b], layers);
        o.Entries.ShouldNotBeEmpty();
    }

    [Fact]
    public async Task Onto_a_base_that_is_not_an_ancestor()
    {
        var other = new TarBuilder().Dir("opt").File("opt/x", "x").Dir("bin").File("bin/sh", "another shell").Build();
        var o = await DiffHarness.SquashAsync([other], [Base()]);
        o.Names.ShouldContain("opt/.wh..wh..opq".Replace("opt/.wh..wh..opq", ".wh.opt"));
        o.Names.ShouldContain("bin/sh");
    }

    [Fact]
    public async Task Same_inputs_give_the_same_diff_id_and_clamped_times()
    {
        var b = Base();
        var l2 = new TarBuilder().File("etc/new", "n", mtime: TarBuilder.Time.AddYears(5)).Whiteout("bin/ls").Build();
        var clamp = TarBuilder.Time.AddDays(1);
        var one = await DiffHarness.SquashAsync([b], [b, l2], new LayerDiffOptions { ClampTime = clamp });
        var two = await DiffHarness.SquashAsync([b], [b, l2], new LayerDiffOptions { ClampTime = clamp });
        one.Result.DiffId.ShouldBe(two.Result.DiffId);
        one.Layer.ShouldBe(two.Layer);
        one.Entries.ShouldAllBe(e => e.Entry.ModificationTime <= clamp);
        one.Get("etc/new").ModificationTime.ShouldBe(clamp);
    }

    [Fact]
    public async Task Verify_catches_a_broken_layer()
    {
        var b = Base();
        var l2 = new TarBuilder().File("etc/passwd", "changed!").Whiteout("bin/ls").File("new", "n").Build();
        var o = await DiffHarness.SquashAsync([b], [b, l2]);
        // Drop the whiteout and tamper with a file: both must be reported.
        var broken = TarCodecTests.Rewrite(o.Entries
            .Where(e => e.Entry.Name != "bin/.wh.ls")
            .Select(e => e.Entry.Name == "new" ? (e.Entry, "N"u8.ToArray()) : e));
        var diffs = await LayerVerifier.VerifyAsync(o.Base, new MemoryStream(broken), o.Final, default);
        diffs.Select(d => d.ToString()).ShouldBe(["bin/ls: unexpected", "new: content differs"]);
    }

    [Fact]
    public async Task A_stream_out_of_walk_order_is_refused()
    {
        var tar = new TarBuilder().File("b", "1").File("a", "2").Build();
        await using var reader = new LayerTarReader(new MemoryStream(tar));
        var ex = await Should.ThrowAsync<ImageFormatException>(() => LayerDiff.WriteAsync(FsIndex.Empty, reader, new MemoryStream(), null, default));
        ex.Message.ShouldContain("walk order");
    }

    [Fact]
    public async Task Layer_stack_source_gives_the_same_layer_as_a_flattened_stream()
    {
        var b = Base();
        var l2 = new TarBuilder().File("etc/passwd", "root:y:0:0").HardLink("bin/zz", "bin/ls").Whiteout("var/lib").Build();
        var viaStream = await DiffHarness.SquashAsync([b], [b, l2]);
        var baseIndex = await FsIndex.FromLayersAsync([DiffHarness.Opener(b)], default);
        using var output = new MemoryStream();
        var r = await LayerDiff.WriteFromLayersAsync(baseIndex, [DiffHarness.Opener(b), DiffHarness.Opener(l2)], output, null, default);
        r.DiffId.ShouldBe(viaStream.Result.DiffId);
    }
}
