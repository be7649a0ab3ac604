using System.Security.Cryptography;
using System.Text;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Layers.Index;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.Image.Tests.Layers;

/// <summary>
/// Entries written under a symlink of the same layer (issue 14, item 2). Measured on Docker 20.10 (overlay2):
/// a layer holding <c>link -&gt; /</c> then <c>link/bin/sh</c> replaces the image's <c>/bin/sh</c> and keeps
/// <c>link</c> a symlink. Every reader must see that view.
/// </summary>
public class SymlinkParentTests
{
    private static readonly byte[] Busybox = Encoding.UTF8.GetBytes("busybox\n");
    private static readonly byte[] Evil = Encoding.UTF8.GetBytes("#!evil\n");

    private static byte[] BaseLayer() => new TarBuilder().Dir("bin").File(LayerPath.Parse("bin/sh"), Busybox, mode: 0x1ED).Dir("etc").File("etc/hostname", "base\n").Build();

    private static byte[] LinkLayer() => new TarBuilder().Symlink("link", "/").File(LayerPath.Parse("link/bin/sh"), Evil, mode: 0x1ED).Build();

    [Fact]
    public async Task The_reader_puts_an_entry_under_a_symlink_of_its_layer_where_the_engine_does()
    {
        var entries = await TarBuilder.ReadAllAsync(LinkLayer());
        entries.Select(e => (e.Entry.Path.ToString(), e.Entry.Type)).ShouldBe([("link", LayerEntryType.Symlink), ("bin/sh", LayerEntryType.RegularFile)]);
        entries[1].Content.ShouldBe(Evil);
    }

    [Theory]
    [InlineData("../../../etc", "d/up/hostname", "etc/hostname")] // climbing above the root stops there
    [InlineData("/etc", "d/up/hostname", "etc/hostname")]
    [InlineData("sub", "d/up/x", "d/sub/x")] // relative to the link's directory
    [InlineData("../e/./f/..", "d/up/x", "e/x")]
    public async Task Relative_and_absolute_targets_resolve_confined_to_the_root(string target, string name, string expected)
    {
        var layer = new TarBuilder().Dir("d").Symlink("d/up", target).File(name, "x").Build();
        var entries = await TarBuilder.ReadAllAsync(layer);
        entries[^1].Entry.Path.ToString().ShouldBe(expected);
    }

    [Fact]
    public async Task Links_to_links_are_followed_and_loops_are_refused()
    {
        var chain = new TarBuilder().Dir("c").Symlink("b", "c").Symlink("a", "b").File("a/x", "x").Build();
        (await TarBuilder.ReadAllAsync(chain))[^1].Entry.Path.ToString().ShouldBe("c/x");

        var loop = new TarBuilder().Symlink("a", "b").Symlink("b", "a").File("a/x", "x").Build();
        var ex = await Should.ThrowAsync<ImageFormatException>(() => TarBuilder.ReadAllAsync(loop));
        ex.Message.ShouldContain("too many levels of symbolic links");
    }

    [Fact]
    public async Task An_entry_that_replaces_the_symlink_ends_its_effect()
    {
        var layer = new TarBuilder().Symlink("link", "/").Dir("link").File("link/x", "x").Build();
        (await TarBuilder.ReadAllAsync(layer)).Select(e => e.Entry.Path.ToString()).ShouldBe(["link", "link", "link/x"]);
    }

    [Fact]
    public async Task A_hard_link_through_a_symlinked_parent_names_the_resolved_target()
    {
        var layer = new TarBuilder().Dir("real").File("real/f", "f").Symlink("via", "real").HardLink("g", "via/f").Build();
        var entries = await TarBuilder.ReadAllAsync(layer);
        entries[^1].Entry.HardLinkTarget.ToString().ShouldBe("real/f");
    }

    [Fact]
    public async Task Indexes_in_memory_and_on_disk_and_the_diff_see_the_overwrite()
    {
        Func<CancellationToken, Task<Stream>>[] image = [DiffHarness.Opener(BaseLayer()), DiffHarness.Opener(LinkLayer())];
        var inMemory = await FsIndex.FromLayersAsync(image, default);
        using var onDisk = await FsIndex.FromLayersOnDiskAsync(image, null, default);
        foreach (var index in new[] { inMemory, onDisk })
        {
            index.Find(LayerPath.Parse("bin/sh"))!.ContentHash.ShouldBe(SHA256.HashData(Evil));
            index.Find(LayerPath.Parse("link"))!.Entry.Type.ShouldBe(LayerEntryType.Symlink);
            index.Find(LayerPath.Parse("link/bin")).ShouldBeNull();
        }

        var baseIndex = await FsIndex.FromLayersAsync([DiffHarness.Opener(BaseLayer())], default);
        var changes = FsComparison.Compare(baseIndex, onDisk);
        changes.Select(c => $"{c.Kind} {c.Path}").ShouldBe(["Changed bin/sh", "Added link"]);
    }

    [Fact]
    public async Task A_squash_of_it_carries_the_overwrite_and_verifies()
    {
        var outcome = await DiffHarness.SquashAsync([BaseLayer()], [BaseLayer(), LinkLayer()]);
        outcome.ContentOf("bin/sh").ShouldBe(Evil);
        outcome.Get("link").Type.ShouldBe(LayerEntryType.Symlink);
        outcome.Names.ShouldNotContain("link/");
    }

    [Fact]
    public async Task Verification_catches_a_layer_whose_symlinked_parent_is_taken_for_a_directory()
    {
        var baseIndex = await FsIndex.FromLayersAsync([DiffHarness.Opener(BaseLayer())], default);
        // The view LayerTool had before: 'link' a directory holding bin/sh, the base's /bin/sh untouched.
        var wrongView = await FsIndex.FromLayersAsync([DiffHarness.Opener(BaseLayer()),
            DiffHarness.Opener(new TarBuilder().Dir("link").Dir("link/bin").File(LayerPath.Parse("link/bin/sh"), Evil, mode: 0x1ED).Build())], default);
        var engineView = await FsIndex.FromLayersAsync([DiffHarness.Opener(BaseLayer()), DiffHarness.Opener(LinkLayer())], default);

        (await LayerVerifier.VerifyAsync(baseIndex, new MemoryStream(LinkLayer()), wrongView, default)).ShouldNotBeEmpty();
        (await LayerVerifier.VerifyInMemoryAsync(baseIndex, new MemoryStream(LinkLayer()), wrongView, default)).ShouldNotBeEmpty();
        (await LayerVerifier.VerifyAsync(baseIndex, new MemoryStream(LinkLayer()), engineView, default)).ShouldBeEmpty();

        // Entries recorded by a writer (not read back) with a path under a symlink they wrote: never taken as a directory.
        var written = new List<WrittenLayerEntry>
        {
            new(new LayerEntry { Path = LayerPath.Parse("link"), Type = LayerEntryType.Symlink, Mode = 0x1FF, LinkTarget = "/"u8.ToArray() }, null),
            new(new LayerEntry { Path = LayerPath.Parse("link/bin"), Type = LayerEntryType.Directory, Mode = 0x1ED }, null),
            new(new LayerEntry { Path = LayerPath.Parse("link/bin/sh"), Type = LayerEntryType.RegularFile, Mode = 0x1ED, Size = Evil.Length }, SHA256.HashData(Evil)),
        };
        (await LayerVerifier.VerifyWritten(baseIndex, written, wrongView, default)).ShouldNotBeEmpty();
    }
}
