using LayerTool.Image.Layers;
using LayerTool.Image.Rebase;
using static LayerTool.Image.Tests.Rebase.RebaseTestImages;

namespace LayerTool.Image.Tests.Rebase;

/// <summary><see cref="LayerTouches"/> on disk (<see cref="LayerTouchesCache"/>): the file lists a registry rebase keeps so
/// that an own layer is read once, and the check that reads them only when the bases differ.</summary>
public sealed class LayerTouchesCacheTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("layertool-touches-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static async Task<LayerTouches> TouchesAsync(MemoryLayer layer) => await LayerTouches.ReadAsync(layer.Open(CancellationToken.None), CancellationToken.None);

    private static MemoryLayer Sample() => Layer(t => t
        .Dir("etc", mode: 0x1C0, uid: 7, gid: 8)
        .File(LayerPath.FromBytes([(byte)'e', (byte)'t', (byte)'c', (byte)'/', 0xff, (byte)'x']), [1, 2, 3], xattrs: LayerEntry.CreateXattrs([new("user.k", [9, 0, 9])]))
        .Symlink("etc/link", "x")
        .Whiteout("usr/share/doc")
        .Opaque("var/cache")
        .Opaque(""));

    [Fact]
    public async Task A_file_list_round_trips_byte_exact_names_metadata_whiteouts_and_opaque_directories()
    {
        var touches = await TouchesAsync(Sample());
        using var buffer = new MemoryStream();
        touches.WriteTo(buffer);
        buffer.Position = 0;
        var back = LayerTouches.ReadFrom(buffer);

        back.Writes.Keys.OrderBy(p => p).ShouldBe(touches.Writes.Keys.OrderBy(p => p));
        foreach (var (path, entry) in touches.Writes)
        {
            var copy = back.Writes[path];
            (copy.Type, copy.Mode, copy.Uid, copy.Gid).ShouldBe((entry.Type, entry.Mode, entry.Uid, entry.Gid), path.ToString());
            LayerEntry.SameXattrs(copy.Xattrs, entry.Xattrs).ShouldBeTrue(path.ToString());
        }

        back.Writes.Keys.Count(p => p.Bytes.IndexOf((byte)0xff) >= 0).ShouldBe(1);
        back.Whiteouts.ShouldBe(touches.Whiteouts, ignoreOrder: true);
        back.OpaqueDirectories.ShouldBe(touches.OpaqueDirectories, ignoreOrder: true);
        back.OpaqueDirectories.ShouldContain(LayerPath.Root);
    }

    [Fact]
    public async Task The_cache_gives_back_what_it_was_given_and_drops_a_damaged_entry()
    {
        var layer = Sample();
        var cache = new LayerTouchesCache(Path.Combine(_dir, "touches"));
        cache.TryGet(layer.DiffId).ShouldBeNull();
        cache.TryPut(layer.DiffId, await TouchesAsync(layer)).ShouldBeTrue();
        cache.TryGet(layer.DiffId).ShouldNotBeNull().Whiteouts.Single().ToString().ShouldBe("usr/share/doc");

        var file = Directory.GetFiles(Path.Combine(_dir, "touches")).Single();
        var bytes = await File.ReadAllBytesAsync(file);
        await File.WriteAllBytesAsync(file, bytes[..^3]);
        cache.TryGet(layer.DiffId).ShouldBeNull();
        File.Exists(file).ShouldBeFalse();
    }

    [Fact]
    public async Task The_own_layers_are_read_only_when_the_bases_filesystems_differ()
    {
        var base1 = MakeImage("b1", [Layer(t => t.Dir("lib").File("lib/a.so", "a"))]);
        var same = MakeImage("b2", [Layer(t => t.Dir("lib").File("lib/a.so", "a"))]);
        var patched = MakeImage("b3", [Layer(t => t.Dir("lib").File("lib/a.so", "a, patched"))]);
        using var oldIndex = await IndexAsync(base1);
        using var sameIndex = await IndexAsync(same);
        using var patchedIndex = await IndexAsync(patched);
        var own = await TouchesAsync(Layer(t => t.Dir("lib").File("lib/a.so", "mine")));
        var reads = 0;
        Task<IReadOnlyList<LayerTouches>> Read(CancellationToken ct)
        {
            reads++;
            return Task.FromResult<IReadOnlyList<LayerTouches>>([own]);
        }

        (await FileConflicts.FindAsync(oldIndex, sameIndex, Read, CancellationToken.None)).ShouldBeEmpty();
        reads.ShouldBe(0);
        (await FileConflicts.FindAsync(oldIndex, patchedIndex, Read, CancellationToken.None)).Single().Kind.ShouldBe(FileConflictKind.Overwritten);
        reads.ShouldBe(1);
    }
}
