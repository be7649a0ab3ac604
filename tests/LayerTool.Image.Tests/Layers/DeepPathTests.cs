using System.Text;
using LayerTool.Image.Formats;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Layers.Index;
using LayerTool.Image.Reports;
using LayerTool.Image.Tests.Formats;

namespace LayerTool.Image.Tests.Layers;

/// <summary>Deep and long paths (issue 14, item 1): refused past the limits, linear in memory below them.</summary>
public class DeepPathTests
{
    /// <summary>A layer with one file under <paramref name="components"/> - 1 directories of <paramref name="width"/> bytes (no directory entries: the applier creates them).</summary>
    private static byte[] DeepLayer(int components, int width = 15)
    {
        var parts = Enumerable.Range(0, components - 1).Select(i => "d" + i.ToString(System.Globalization.CultureInfo.InvariantCulture).PadLeft(width - 1, '0')).Append("file");
        return new TarBuilder().File(LayerPath.Parse(string.Join('/', parts)), "deep\n"u8.ToArray()).Build();
    }

    [Fact]
    public async Task A_path_of_more_than_4096_components_is_refused_naming_it()
    {
        var layer = DeepLayer(LayerPath.MaxComponents + 1, width: 3);
        var ex = await Should.ThrowAsync<ImageFormatException>(() => FsIndex.FromLayersAsync([DiffHarness.Opener(layer)], default));
        ex.Message.ShouldContain("4097 components");
        ex.Message.ShouldContain("limit of 4096");
        ex.Message.ShouldContain("d00/d01/d02/");
        ex.Message.Length.ShouldBeLessThan(600);
    }

    [Fact]
    public async Task A_path_longer_than_64_KiB_is_refused_on_every_reading_path()
    {
        // 300 components of 220 bytes: few components, too many bytes.
        var layer = DeepLayer(300, width: 220);
        var opener = DiffHarness.Opener(layer);
        foreach (var read in new Func<Task>[]
        {
            () => FsIndex.FromLayersAsync([opener], default),
            () => FsIndex.FromLayersOnDiskAsync([opener], null, default),
            () => LayerUsageAnalyzer.AnalyzeAsync([opener], default),
            () => DiffHarness.FlattenAsync([layer]),
        })
        {
            var ex = await Should.ThrowAsync<ImageFormatException>(read);
            ex.Message.ShouldContain("over LayerTool's limit of 65536 bytes");
        }
    }

    [Fact]
    public async Task A_link_target_longer_than_64_KiB_is_refused()
    {
        var layer = new TarBuilder().Symlink("link", new string('x', LayerPath.MaxBytes + 1)).Build();
        var ex = await Should.ThrowAsync<ImageFormatException>(() => FsIndex.FromLayersAsync([DiffHarness.Opener(layer)], default));
        ex.Message.ShouldContain("'link'");
        ex.Message.ShouldContain("link target");
    }

    [Fact]
    public async Task The_error_names_the_layer_of_the_archive()
    {
        using var dir = new TempDir();
        var baseImage = TestImage.Create(1);
        var layers = new List<byte[]>(baseImage.Layers) { DeepLayer(LayerPath.MaxComponents + 1, width: 3) };
        var image = baseImage with { Layers = layers, Config = ConfigFor(layers) };
        using var archive = ImageArchive.Open(TestArchives.WriteTar(dir.File("deep.tar"), TestArchives.DockerArchive(image, ["deep:1"])));

        var ex = await Should.ThrowAsync<ImageFormatException>(() => ImageReports.LayersAsync(archive.GetImage(), default));
        ex.Message.ShouldContain("deep.tar: layer 2 of 2");
        ex.Message.ShouldContain("4097 components");
        var diff = await Should.ThrowAsync<ImageFormatException>(() => ImageReports.DiffAsync(archive.GetImage(), archive.GetImage(), default));
        diff.Message.ShouldContain("layer 2 of 2");
    }

    [Fact]
    public async Task A_path_just_under_the_limits_works_everywhere_with_memory_linear_in_it()
    {
        // 4096 components (4095 directories of 15 bytes and their slashes, then "file"): 65,524 bytes.
        var layer = DeepLayer(LayerPath.MaxComponents, width: 15);
        var opener = DiffHarness.Opener(layer);

        var before = GC.GetAllocatedBytesForCurrentThread();
        var index = await FsIndex.FromLayersAsync([opener], default);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        index.Count.ShouldBe(LayerPath.MaxComponents);
        var file = index.Entries.Last();
        file.Path.Depth.ShouldBe(LayerPath.MaxComponents);
        file.Path.Bytes.Length.ShouldBe(65_524);
        // Every directory's path shares the file's bytes: a copy per ancestor would allocate 4096 × 32 KB = 134 MB.
        allocated.ShouldBeLessThan(40L << 20);

        using var onDisk = await FsIndex.FromLayersOnDiskAsync([opener], null, default);
        onDisk.Count.ShouldBe(LayerPath.MaxComponents);
        var usage = await LayerUsageAnalyzer.AnalyzeAsync([opener], default);
        usage.Single().Files.ShouldBe(1);

        // Exactly 65,536 bytes: one component of 256 bytes, 255 of 255, and their 255 slashes.
        var longest = string.Join('/', Enumerable.Range(0, 256).Select(i => new string((char)('a' + (i % 26)), i == 0 ? 256 : 255)));
        Encoding.UTF8.GetByteCount(longest).ShouldBe(LayerPath.MaxBytes);
        var atLimit = await FsIndex.FromLayersAsync([DiffHarness.Opener(new TarBuilder().File(LayerPath.Parse(longest), "x"u8.ToArray()).Build())], default);
        atLimit.Count.ShouldBe(256);
    }

    [Fact]
    public async Task An_on_disk_index_of_a_deep_chain_is_linear_on_disk_and_when_read_back()
    {
        // 4095 directories of 15 bytes then a file: full paths would be 4096 × 32 KB = 134 MB on disk, and as much
        // again for a reader holding the whole directory chain (as a squash's writer and verifier do).
        var layer = DeepLayer(LayerPath.MaxComponents, width: 15);
        var tree = await FsIndex.FromLayersAsync([DiffHarness.Opener(layer)], default);
        using var file = new MemoryStream();
        FsIndexSerializer.Write(tree, file);
        file.Length.ShouldBeLessThan(1L << 20);
        file.Position = 0;
        using var disk = FsIndexSerializer.Read(file);

        var before = GC.GetAllocatedBytesForCurrentThread();
        var chain = disk.Entries.ToList();
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        chain.Count.ShouldBe(LayerPath.MaxComponents);
        allocated.ShouldBeLessThan(16L << 20);
        LayerVerifier.Compare(tree, disk).ShouldBeEmpty();
        for (var i = 1; i < chain.Count; i++) chain[i - 1].Path.ShouldBe(chain[i].Path.Parent);
        chain[^1].Path.Bytes.Length.ShouldBe(65_524);
        disk.Find(chain[2000].Path)!.Path.ShouldBe(chain[2000].Path);
        disk.Find(chain[2000].Path.Append("nothere")).ShouldBeNull();
    }

    [Fact]
    public async Task Front_coded_paths_read_back_exactly_in_any_order_of_lengths()
    {
        var b = new TarBuilder().Dir("a").Dir("a/b").Dir("a/b/c").File("a/b/c/d", "1").File("a/b/c2", "2").Dir("a/bb")
            .File("a/bb/x", "3").File("a0", "4").Dir("b").File("b/" + new string('y', 300), "5").File("\u00e9t\u00e9", "6");
        for (var i = 0; i < 200; i++) b.File($"b/f{i:D3}", "z");
        var tree = await FsIndex.FromLayersAsync([DiffHarness.Opener(b.Build())], default);
        using var file = new MemoryStream();
        FsIndexSerializer.Write(tree, file);
        file.Position = 0;
        using var disk = FsIndexSerializer.Read(file);
        disk.Entries.Select(e => e.Path.ToString()).ShouldBe(tree.Entries.Select(e => e.Path.ToString()));
        foreach (var e in tree.Entries) disk.Find(e.Path).ShouldNotBeNull(e.Path.ToString());
    }

    [Fact]
    public void Ancestors_share_the_bytes_of_their_path()
    {
        var path = LayerPath.Parse("a/bb/ccc/dddd");
        path.Ancestors().Select(a => a.ToString()).ShouldBe(["a", "a/bb", "a/bb/ccc"]);
        path.Parent.ShouldBe(LayerPath.Parse("a/bb/ccc"));
        path.Parent.GetHashCode().ShouldBe(LayerPath.Parse("a/bb/ccc").GetHashCode());
        path.Parent.Name.SequenceEqual("ccc"u8).ShouldBeTrue();
        path.Parent.Append("x").ToString().ShouldBe("a/bb/ccc/x");
        path.Parent.IsAncestorOf(path).ShouldBeTrue();
        LayerPath.Parse("a/bb/ccc").CompareTo(path.Parent).ShouldBe(0);
    }

    [Fact]
    public void A_corrupt_gzip_layer_names_the_layer()
    {
        using var dir = new TempDir();
        var image = TestImage.Create(2);
        var members = TestArchives.DockerArchive(image, ["t:1"], gzipLayers: true);
        var i = members.FindLastIndex(m => m.Name.EndsWith("/layer.tar", StringComparison.Ordinal));
        var data = members[i].Data.ToArray();
        data[2] = 7; // not deflate: the gzip header says another method
        members[i] = (members[i].Name, data);
        using var archive = ImageArchive.Open(TestArchives.WriteTar(dir.File("a.tar"), members));

        var ex = Should.Throw<ImageFormatException>(() =>
        {
            using var stream = archive.GetImage().Layers[1].Open(CancellationToken.None);
            TestArchives.ReadAll(stream);
        });
        ex.Message.ShouldContain("layer 2 of 2");
        ex.Message.ShouldContain("gzip");
        ex.InnerException.ShouldBeOfType<InvalidDataException>();
    }

    private static byte[] ConfigFor(IReadOnlyList<byte[]> layers)
    {
        var diffIds = string.Join(',', layers.Select(l => $"\"{Digest.Compute(l)}\""));
        return Encoding.UTF8.GetBytes($"{{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[{diffIds}]}}}}");
    }
}

/// <summary>The smaller items of issue 14 (item 7) that live in the image library.</summary>
public class RootOpaqueTests
{
    [Fact]
    public async Task A_root_opaque_marker_hides_nothing_and_wastes_nothing_as_in_diff_and_squash()
    {
        var lower = new TarBuilder().Dir("etc").File("etc/passwd", "root:x:0:0\n").File("big", new string('x', 1000)).Build();
        var upper = new TarBuilder().Opaque("").File("new", "n\n").Build();
        // The marker's own path: ".wh..wh..opq" at the root.
        (await TarBuilder.ReadAllAsync(upper))[0].Entry.Path.ToString().ShouldBe(".wh..wh..opq");
        Func<CancellationToken, Task<Stream>>[] layers = [DiffHarness.Opener(lower), DiffHarness.Opener(upper)];

        var usage = await LayerUsageAnalyzer.AnalyzeAsync(layers, default);
        usage[0].WastedBytes.ShouldBe(0);
        usage[0].WastedFiles.ShouldBe(0);

        var inMemory = await FsIndex.FromLayersAsync(layers, default);
        using var onDisk = await FsIndex.FromLayersOnDiskAsync(layers, null, default);
        inMemory.Entries.Select(e => e.Path.ToString()).ShouldBe(["big", "etc", "etc/passwd", "new"]);
        onDisk.Entries.Select(e => e.Path.ToString()).ShouldBe(["big", "etc", "etc/passwd", "new"]);
    }
}
