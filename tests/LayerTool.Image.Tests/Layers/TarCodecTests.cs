using System.Formats.Tar;
using System.Text;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.Image.Tests.Layers;

public class TarCodecTests
{
    private static readonly byte[] Latin1Name = [.. "dir/caf"u8, 0xE9, .. "/na"u8, 0xEF, .. "ve"u8, 0xFF, .. ".txt"u8];

    [Fact]
    public async Task Every_entry_kind_round_trips()
    {
        var longName = LayerPath.Parse("deep/" + string.Join('/', Enumerable.Repeat(new string('n', 60), 5)));
        var tar = new TarBuilder()
            .Dir("a", mode: 0x3FF | 0x200) // 1777 sticky
            .File("a/f", "hello", mode: 0x9ED, uid: 1000, gid: 50) // 4755 setuid
            .File("a/g", "x", mode: 0x5A4) // 2644 setgid
            .Symlink("a/abs", "/etc/passwd")
            .Symlink("a/rel", "../a/f")
            .HardLink("a/h", "a/f", mode: 0x9ED)
            .Device("a/null", LayerEntryType.CharacterDevice, 1, 3)
            .Device("a/sda", LayerEntryType.BlockDevice, 8, 0)
            .Fifo("a/pipe")
            .File(longName, Encoding.UTF8.GetBytes("long"))
            .File(LayerPath.FromBytes(Latin1Name), [1, 2, 3])
            .Build();
        var all = await TarBuilder.ReadAllAsync(tar);
        all.Count.ShouldBe(11);
        all[0].Entry.Type.ShouldBe(LayerEntryType.Directory);
        all[0].Entry.Mode.ShouldBe(0x3FF | 0x200);
        all[1].Entry.Mode.ShouldBe(0x9ED);
        all[1].Entry.Uid.ShouldBe(1000);
        all[1].Entry.Gid.ShouldBe(50);
        Encoding.UTF8.GetString(all[1].Content).ShouldBe("hello");
        all[2].Entry.Mode.ShouldBe(0x5A4);
        all[3].Entry.LinkTargetText.ShouldBe("/etc/passwd");
        all[4].Entry.LinkTargetText.ShouldBe("../a/f");
        all[5].Entry.Type.ShouldBe(LayerEntryType.HardLink);
        all[5].Entry.HardLinkTarget.ShouldBe(LayerPath.Parse("a/f"));
        (all[6].Entry.Type, all[6].Entry.DevMajor, all[6].Entry.DevMinor).ShouldBe((LayerEntryType.CharacterDevice, 1L, 3L));
        (all[7].Entry.Type, all[7].Entry.DevMajor, all[7].Entry.DevMinor).ShouldBe((LayerEntryType.BlockDevice, 8L, 0L));
        all[8].Entry.Type.ShouldBe(LayerEntryType.Fifo);
        all[9].Entry.Path.ShouldBe(longName);
        all[9].Entry.Path.Bytes.Length.ShouldBeGreaterThan(250);
        all[10].Entry.Path.Bytes.ToArray().ShouldBe(Latin1Name);
        all[10].Content.ShouldBe(new byte[] { 1, 2, 3 });
        all.ShouldAllBe(e => e.Entry.ModificationTime == TarBuilder.Time);
    }

    [Fact]
    public async Task Writing_what_was_read_gives_the_same_bytes()
    {
        var tar = new TarBuilder()
            .Dir("a").File("a/f", "x").File(LayerPath.FromBytes(Latin1Name), [9])
            .File(LayerPath.Parse("x/" + new string('y', 300)), [1], xattrs: LayerEntry.CreateXattrs([new("user.k", [0, 1, 2])]))
            .Build();
        var again = Rewrite(await TarBuilder.ReadAllAsync(tar));
        again.ShouldBe(tar);
    }

    [Fact]
    public void Long_ascii_names_use_the_ustar_prefix_and_other_names_pax()
    {
        var dir = string.Join('/', Enumerable.Repeat(new string('d', 40), 3)); // 122 bytes + '/'
        var tar = new TarBuilder().Dir(dir).File(dir + "/f", "x").File("é", "y").Build();
        // dir: header; f: header + data; é: PAX header + records + header + data; end marker.
        // No PAX header for the long ASCII names: the ustar prefix field took them.
        tar.Length.ShouldBe(512 + (512 * 2) + (512 * 4) + 1024);
    }

    [Fact]
    public async Task Xattrs_and_big_values_round_trip_through_pax()
    {
        var entry = new LayerEntry
        {
            Path = LayerPath.Parse("bin/ping"),
            Type = LayerEntryType.RegularFile,
            Mode = 0x1ED,
            Uid = 5_000_000,
            Gid = 3_000_000,
            UserName = new string('u', 40),
            Size = 2,
            ModificationTime = DateTimeOffset.FromUnixTimeSeconds(99_999_999_999),
            Xattrs = LayerEntry.CreateXattrs([new("security.capability", [1, 0, 0, 2, 0x20, 0, 0, 0]), new("user.note", "é"u8.ToArray())]),
        };
        var tar = new TarBuilder().Add(entry, [7, 8]).Build();
        var read = (await TarBuilder.ReadAllAsync(tar)).Single().Entry;
        read.SameMetadata(entry).ShouldBeTrue();
        read.UserName.ShouldBe(entry.UserName);
        read.ModificationTime.ShouldBe(entry.ModificationTime);
    }

    [Fact]
    public async Task Reads_gnu_tar_with_non_utf8_names_long_names_links_and_devices()
    {
        var all = await TarBuilder.ReadAllAsync(await File.ReadAllBytesAsync(TarBuilder.DataPath("gnu.tar")));
        var byName = all.ToDictionary(e => e.Entry.Path);
        byName[LayerPath.FromBytes(Latin1Name)].Content.ShouldBe("latin1 name\n"u8.ToArray());
        var longFile = all.Single(e => e.Entry.Path.Name.StartsWith("ffff"u8));
        longFile.Entry.Path.Bytes.Length.ShouldBeGreaterThan(250);
        Encoding.UTF8.GetString(longFile.Content).ShouldBe("long\n");
        byName[LayerPath.Parse("dir/longlink")].Entry.LinkTarget.Length.ShouldBe(203);
        byName[LayerPath.Parse("dir/hard")].Entry.HardLinkTarget.ShouldBe(LayerPath.Parse("dir/file.txt"));
        byName[LayerPath.Parse("dir/sub")].Entry.Mode.ShouldBe(0x3FF | 0x200);
        byName[LayerPath.Parse("dir/suid")].Entry.Mode.ShouldBe(0x9ED);
        byName[LayerPath.Parse("dir/fifo")].Entry.Type.ShouldBe(LayerEntryType.Fifo);
        byName[LayerPath.Parse("dir/file.txt")].Entry.ModificationTime.ShouldBe(TarBuilder.Time);
    }

    [Fact]
    public async Task Reads_base256_numbers()
    {
        var e = (await TarBuilder.ReadAllAsync(await File.ReadAllBytesAsync(TarBuilder.DataPath("bigid.tar")))).Single();
        e.Entry.Uid.ShouldBe(3_000_000);
    }

    [Fact]
    public async Task Reads_pax_xattrs_global_headers_fractional_times_and_libarchive_xattrs()
    {
        var all = await TarBuilder.ReadAllAsync(await File.ReadAllBytesAsync(TarBuilder.DataPath("pax.tar")));
        all.Count.ShouldBe(3);
        all[0].Entry.Xattrs["security.capability"].ShouldBe(new byte[] { 1, 0, 0, 2 });
        all[0].Entry.Xattrs["user.k"].ShouldBe("v"u8.ToArray());
        all[0].Entry.ModificationTime.ShouldBe(TarBuilder.Time.AddMilliseconds(250));
        all[1].Entry.Xattrs["user.la"].ShouldBe("hello"u8.ToArray());
        all[2].Entry.Name.ShouldBe("x/éééééééééé.txt");
        all[2].Entry.Uid.ShouldBe(5_000_000);
        all[2].Entry.UserName.ShouldBe(new string('a', 40));
    }

    [Fact]
    public async Task Reads_what_System_Formats_Tar_writes()
    {
        using var ms = new MemoryStream();
        await using (var w = new TarWriter(ms, TarEntryFormat.Pax, leaveOpen: true))
        {
            var e = new PaxTarEntry(TarEntryType.RegularFile, "p/" + new string('q', 200)) { DataStream = new MemoryStream([5, 6]) };
            await w.WriteEntryAsync(e);
            await w.WriteEntryAsync(new GnuTarEntry(TarEntryType.SymbolicLink, "g/link") { LinkName = new string('z', 150) });
        }
        var all = await TarBuilder.ReadAllAsync(ms.ToArray());
        all[0].Entry.Path.ToString().ShouldBe("p/" + new string('q', 200));
        all[0].Content.ShouldBe(new byte[] { 5, 6 });
        all[1].Entry.LinkTargetText.ShouldBe(new string('z', 150));
    }

    [Fact]
    public async Task Sparse_files_are_refused()
    {
        var ex = await Should.ThrowAsync<ImageFormatException>(() => TarBuilder.ReadAllAsync(File.ReadAllBytes(TarBuilder.DataPath("sparse.tar"))));
        ex.Message.ShouldContain("sparse");
        ex.Message.ShouldContain("'sparse'");
    }

    [Theory]
    [InlineData("../etc/passwd", "escapes")]
    [InlineData("a/../../x", "escapes")]
    [InlineData("/etc/passwd", "absolute")]
    public async Task Escaping_and_absolute_names_are_refused(string name, string why)
    {
        var tar = RawTar(name, '0', "");
        var ex = await Should.ThrowAsync<ImageFormatException>(() => TarBuilder.ReadAllAsync(tar));
        ex.Message.ShouldContain(name);
        ex.Message.ShouldContain(why);
    }

    [Theory]
    [InlineData("../x")]
    [InlineData("/etc/shadow")]
    public async Task Hard_links_escaping_the_root_are_refused(string target)
    {
        var ex = await Should.ThrowAsync<ImageFormatException>(() => TarBuilder.ReadAllAsync(RawTar("a/link", '1', target)));
        ex.Message.ShouldContain("a/link");
        ex.Message.ShouldContain(target);
    }

    [Fact]
    public async Task Symlinks_may_point_anywhere_and_names_are_cleaned()
    {
        var all = await TarBuilder.ReadAllAsync([.. RawTar("./a/./b/", '2', "../../../etc")]);
        all.Single().Entry.Path.ShouldBe(LayerPath.Parse("a/b"));
        all.Single().Entry.LinkTargetText.ShouldBe("../../../etc");
    }

    [Fact]
    public async Task Truncated_and_corrupt_tars_give_clear_errors()
    {
        var tar = new TarBuilder().File("a", new string('x', 3000)).Build();
        var cut = tar[..1500];
        (await Should.ThrowAsync<ImageFormatException>(() => TarBuilder.ReadAllAsync(cut))).Message.ShouldContain("truncated");
        var header = tar[..300];
        (await Should.ThrowAsync<ImageFormatException>(() => TarBuilder.ReadAllAsync(header))).Message.ShouldContain("truncated");
        var corrupt = (byte[])tar.Clone();
        corrupt[512 + 3072 + 10] ^= 0xFF; // second header (after 3000 bytes of content): the end marker, now not zero
        (await Should.ThrowAsync<ImageFormatException>(() => TarBuilder.ReadAllAsync(corrupt))).Message.ShouldContain("offset 3584");
        var corruptBody = (byte[])tar.Clone();
        corruptBody[0] = (byte)'Z';
        (await Should.ThrowAsync<ImageFormatException>(() => TarBuilder.ReadAllAsync(corruptBody))).Message.ShouldContain("not a tar");
        byte[] gzip = [0x1f, 0x8b, .. new byte[600]];
        (await Should.ThrowAsync<ImageFormatException>(() => TarBuilder.ReadAllAsync(gzip))).Message.ShouldContain("gzip");
    }

    [Fact]
    public async Task Unread_content_is_skipped_on_a_non_seekable_stream()
    {
        var tar = new TarBuilder().File("a", new string('x', 100_000)).File("b", "bee").Build();
        await using var reader = new LayerTarReader(new NonSeekable(tar));
        (await reader.ReadNextAsync(default))!.Name.ShouldBe("a");
        var b = await reader.ReadNextAsync(default);
        b!.Name.ShouldBe("b");
        new StreamReader(reader.Content).ReadToEnd().ShouldBe("bee");
        (await reader.ReadNextAsync(default)).ShouldBeNull();
    }

    internal static byte[] Rewrite(IEnumerable<(LayerEntry Entry, byte[] Content)> entries)
    {
        var b = new TarBuilder();
        foreach (var (e, c) in entries) b.Add(e, c);
        return b.Build();
    }

    /// <summary>A one-entry ustar tar with the given raw name, type and link name.</summary>
    internal static byte[] RawTar(string name, char type, string link)
    {
        var h = new byte[512];
        Encoding.UTF8.GetBytes(name).CopyTo(h, 0);
        Encoding.ASCII.GetBytes("0000644\0").CopyTo(h, 100);
        Encoding.ASCII.GetBytes("0000000\0").CopyTo(h, 108);
        Encoding.ASCII.GetBytes("0000000\0").CopyTo(h, 116);
        Encoding.ASCII.GetBytes("00000000000\0").CopyTo(h, 124);
        Encoding.ASCII.GetBytes("00000000000\0").CopyTo(h, 136);
        h[156] = (byte)type;
        Encoding.UTF8.GetBytes(link).CopyTo(h, 157);
        Encoding.ASCII.GetBytes("ustar\000").CopyTo(h, 257);
        for (var i = 148; i < 156; i++) h[i] = (byte)' ';
        var sum = h.Sum(b => (long)b);
        Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ").CopyTo(h, 148);
        return [.. h, .. new byte[1024]];
    }

    internal sealed class NonSeekable(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }
}
