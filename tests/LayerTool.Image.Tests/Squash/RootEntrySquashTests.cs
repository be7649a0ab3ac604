using System.Text;
using LayerTool.Image.Formats;
using LayerTool.Image.Layers;
using LayerTool.Image.Squash;
using LayerTool.Image.Tests.Formats;
using LayerTool.Image.Tests.Layers;

namespace LayerTool.Image.Tests.Squash;

/// <summary>
/// The root directory's own entry (<c>./</c>, issue 14): a squash carries the image's, so a root of mode 0700 stays
/// 0700 in the squashed layer (what <c>docker save</c> and <c>tar -x</c> of the layer see; an engine ignores it).
/// </summary>
public sealed class RootEntrySquashTests : IDisposable
{
    private static readonly DateTimeOffset RootTime = DateTimeOffset.FromUnixTimeSeconds(1_600_000_000);

    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static LayerEntry Root(int mode, long uid = 0) =>
        new() { Path = LayerPath.Root, Type = LayerEntryType.Directory, Mode = mode, Uid = uid, Gid = uid, ModificationTime = RootTime };

    private static byte[] ConfigFor(IReadOnlyList<byte[]> layers)
    {
        var diffIds = string.Join(',', layers.Select(l => $"\"{Digest.Compute(l)}\""));
        return Encoding.UTF8.GetBytes($"{{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[{diffIds}]}}}}");
    }

    private string Archive(string name, params byte[][] layers)
    {
        var image = new TestImage(layers, ConfigFor(layers), "amd64");
        return TestArchives.WriteTar(_dir.File(name + ".tar"), TestArchives.DockerArchive(image, [name + ":1"]));
    }

    /// <summary>The squashed image's last layer, entry by entry.</summary>
    private async Task<List<(LayerEntry Entry, byte[] Content)>> SquashAsync(string input, string? baseInput, string? timestamp = null)
    {
        var output = _dir.File(Guid.NewGuid().ToString("N") + ".tar");
        await ArchiveSquasher.SquashAsync(new SquashRequest(new ArchiveSquashSource(input, null), baseInput is null ? null : new ArchiveSquashSource(baseInput, null))
        {
            OutputPath = output,
            Tags = ["out:1"],
            Timestamp = timestamp is null ? null : DateTimeOffset.Parse(timestamp, System.Globalization.CultureInfo.InvariantCulture),
            TempDirectory = _dir.Path,
        }, null, CancellationToken.None);
        using var archive = ImageArchive.Open(output);
        var layer = archive.GetImage().Layers[^1];
        using var read = new MemoryStream();
        await using (var stream = layer.Open(CancellationToken.None)) await stream.CopyToAsync(read);
        return await TarBuilder.ReadAllAsync(read.ToArray());
    }

    [Fact]
    public async Task Onto_scratch_the_layer_starts_with_the_images_root_entry()
    {
        var first = new TarBuilder().Add(Root(0x1C0)).Dir("etc").File("etc/passwd", "root:x:0:0::/:/bin/sh\n").Build();
        var second = new TarBuilder().File("added", "x").Build();
        var entries = await SquashAsync(Archive("rooted", first, second), null);
        var root = entries[0].Entry;
        root.Path.IsRoot.ShouldBeTrue();
        root.IsDirectory.ShouldBeTrue();
        root.Mode.ShouldBe(0x1C0);
        root.ModificationTime.ShouldBe(RootTime);
        entries.Skip(1).Select(e => e.Entry.Path.ToString()).ShouldBe(["added", "etc", "etc/passwd"]);
    }

    [Fact]
    public async Task A_later_layers_root_entry_wins_and_times_are_clamped()
    {
        var first = new TarBuilder().Add(Root(0x1C0)).File("a", "a").Build();
        var second = new TarBuilder().Add(Root(0x1E8, uid: 7)).File("b", "b").Build();
        var entries = await SquashAsync(Archive("twice", first, second), null, timestamp: "2000-01-01T00:00:00Z");
        var root = entries[0].Entry;
        root.Path.IsRoot.ShouldBeTrue();
        root.Mode.ShouldBe(0x1E8);
        root.Uid.ShouldBe(7);
        root.ModificationTime.ShouldBe(DateTimeOffset.Parse("2000-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Without_a_root_entry_or_onto_a_base_with_the_same_none_is_written()
    {
        var plain = new TarBuilder().File("a", "a").Build();
        (await SquashAsync(Archive("plain", plain), null)).ShouldAllBe(e => !e.Entry.Path.IsRoot);

        var baseLayer = new TarBuilder().Add(Root(0x1C0)).File("a", "a").Build();
        var top = new TarBuilder().File("b", "b").Build();
        var onBase = await SquashAsync(Archive("top", baseLayer, top), Archive("base", baseLayer));
        onBase.Select(e => e.Entry.Path.ToString()).ShouldBe(["b"]);

        // A root the image changes over the base's goes into the layer.
        var changed = new TarBuilder().Add(Root(0x1ED)).File("c", "c").Build();
        var onBaseChanged = await SquashAsync(Archive("changed", baseLayer, changed), Archive("base2", baseLayer));
        onBaseChanged[0].Entry.Path.IsRoot.ShouldBeTrue();
        onBaseChanged[0].Entry.Mode.ShouldBe(0x1ED);
    }
}
