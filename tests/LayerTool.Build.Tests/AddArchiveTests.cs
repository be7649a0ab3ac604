using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using LayerTool.Build.Execution;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.Build.Tests;

/// <summary>ADD's local-archive rules: what counts as an archive, and extraction confined to the destination.</summary>
public sealed class AddArchiveTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lt-add-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string File(string name, byte[] bytes)
    {
        var path = Path.Combine(_dir, name);
        System.IO.File.WriteAllBytes(path, bytes);
        return path;
    }

    private static byte[] Tar(params (TarEntryType Type, string Name, string? Link, string? Data)[] entries)
    {
        using var buffer = new MemoryStream();
        using (var writer = new TarWriter(buffer, TarEntryFormat.Gnu, leaveOpen: true))
        {
            foreach (var (type, name, link, data) in entries)
            {
                var e = new GnuTarEntry(type, name) { Mode = (UnixFileMode)0x1A4 };
                if (link is not null) e.LinkName = link;
                if (data is not null) e.DataStream = new MemoryStream(Encoding.UTF8.GetBytes(data));
                writer.WriteEntry(e);
            }
        }
        return buffer.ToArray();
    }

    private static byte[] Gzip(byte[] bytes)
    {
        using var buffer = new MemoryStream();
        using (var gz = new GZipStream(buffer, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(bytes);
        return buffer.ToArray();
    }

    private static byte[] Bzip2(byte[] bytes)
    {
        using var buffer = new MemoryStream();
        using (var bz = new ICSharpCode.SharpZipLib.BZip2.BZip2OutputStream(buffer) { IsStreamOwner = false }) bz.Write(bytes);
        return buffer.ToArray();
    }

    [Fact]
    public void Tars_compressed_or_not_are_archives()
    {
        var tar = Tar((TarEntryType.RegularFile, "a.txt", null, "a"));
        AddArchive.IsArchive(File("plain.tar", tar)).ShouldBeTrue();
        AddArchive.IsArchive(File("any-name", Gzip(tar))).ShouldBeTrue();
        AddArchive.IsArchive(File("b.tar.bz2", Bzip2(tar))).ShouldBeTrue();
    }

    [Fact]
    public void Files_that_only_look_like_archives_are_copied_as_files()
    {
        AddArchive.IsArchive(File("text.tar.gz", Encoding.UTF8.GetBytes("plain text\n"))).ShouldBeFalse();
        AddArchive.IsArchive(File("gz-nontar.tar.gz", Gzip(Encoding.UTF8.GetBytes("hello, not a tar\n")))).ShouldBeFalse();
        AddArchive.IsArchive(File("big-gz-nontar.gz", Gzip(new byte[4096].Select((_, i) => (byte)('a' + i % 26)).ToArray()))).ShouldBeFalse();
        AddArchive.IsArchive(File("bz-nontar.bz2", Bzip2(Encoding.UTF8.GetBytes("hi\n")))).ShouldBeFalse();
        AddArchive.IsArchive(File("a.zip", [(byte)'P', (byte)'K', 3, 4, .. new byte[600]])).ShouldBeFalse();
        // An empty tar (two zero blocks) reads as the end at once: docker copies it as a file.
        AddArchive.IsArchive(File("empty.tar", new byte[1024])).ShouldBeFalse();
        AddArchive.IsArchive(File("short.tar", Encoding.UTF8.GetBytes("hello"))).ShouldBeFalse();
        // A truncated gzip header, and a corrupt gzip body.
        AddArchive.IsArchive(File("cut.gz", [0x1f, 0x8b, 0x08])).ShouldBeFalse();
        AddArchive.IsArchive(File("bad.gz", [0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff])).ShouldBeFalse();
    }

    [Fact]
    public void A_header_with_a_wrong_checksum_is_no_archive()
    {
        var tar = Tar((TarEntryType.RegularFile, "a.txt", null, "a"));
        tar[0] ^= 0x01;
        AddArchive.IsArchive(File("bad-sum.tar", tar)).ShouldBeFalse();
    }

    private async Task<List<(string Name, TarEntryType Type, string Link)>?> ConfineAsync(byte[] tar, string destination, AddArchive.ImageLookup? image = null)
    {
        var path = File("x.tar", tar);
        using var output = new MemoryStream();
        if (!await AddArchive.TryConfineAsync(path, destination, output, CancellationToken.None, image)) return null;
        output.Position = 0;
        var list = new List<(string, TarEntryType, string)>();
        using var reader = new TarReader(output);
        while (reader.GetNextEntry() is { } e) list.Add((e.Name, e.EntryType, e.LinkName));
        return list;
    }

    [Fact]
    public async Task An_archive_without_links_to_follow_goes_up_as_it_is()
    {
        var tar = Tar((TarEntryType.Directory, "d/", null, null), (TarEntryType.RegularFile, "d/f", null, "x"), (TarEntryType.SymbolicLink, "d/l", "/etc", null));
        (await ConfineAsync(tar, "/t")).ShouldBeNull();
    }

    [Fact]
    public async Task Entries_through_a_link_of_the_archive_stay_under_the_destination()
    {
        var tar = Tar(
            (TarEntryType.SymbolicLink, "link", "/", null),
            (TarEntryType.RegularFile, "link/etc/passwd", null, "evil"),
            (TarEntryType.SymbolicLink, "rel", "../../..", null),
            (TarEntryType.RegularFile, "rel/etc/group", null, "g"),
            (TarEntryType.Directory, "sub/", null, null),
            (TarEntryType.Directory, "a/", null, null),
            (TarEntryType.SymbolicLink, "a/b", "/sub", null),
            (TarEntryType.RegularFile, "a/b/x/y", null, "n"),
            (TarEntryType.HardLink, "hl", "link/etc/passwd", null),
            (TarEntryType.SymbolicLink, "chain", "a/b", null),
            (TarEntryType.RegularFile, "chain/z", null, "z"),
            (TarEntryType.Directory, "replaced/", null, null),
            (TarEntryType.SymbolicLink, "replaced", "/", null),
            (TarEntryType.RegularFile, "replaced/bin/sh", null, "s"),
            (TarEntryType.SymbolicLink, "up", "a/../../../../sub", null),
            (TarEntryType.RegularFile, "up/w", null, "w"),
            (TarEntryType.RegularFile, "../../escape", null, "e"));
        var entries = (await ConfineAsync(tar, "/t/deeper"))!;
        entries.ShouldNotBeNull();
        entries.Select(e => e.Name).ShouldBe([
            "t/deeper/link", "t/deeper/etc/passwd", "t/deeper/rel", "t/deeper/etc/group", "t/deeper/sub/", "t/deeper/a/",
            "t/deeper/a/b", "t/deeper/sub/x/y", "t/deeper/hl", "t/deeper/chain", "t/deeper/sub/z", "t/deeper/replaced/",
            "t/deeper/replaced", "t/deeper/bin/sh", "t/deeper/up", "t/deeper/sub/w", "t/deeper/escape"]);
        // Links keep their targets as written; a hard link names its resolved target.
        entries.Single(e => e.Name == "t/deeper/link").Link.ShouldBe("/");
        entries.Single(e => e.Name == "t/deeper/rel").Link.ShouldBe("../../..");
        entries.Single(e => e.Name == "t/deeper/hl").Link.ShouldBe("t/deeper/etc/passwd");
    }

    [Fact]
    public async Task A_relative_link_that_climbs_above_the_destination_needs_the_rewrite()
    {
        // The engine refuses it at the destination ("invalid symlink"); docker's chroot keeps it as it is.
        var entries = (await ConfineAsync(Tar((TarEntryType.SymbolicLink, "rel", "../../..", null)), "/"))!;
        entries.ShouldNotBeNull();
        entries.Single().ShouldBe(("rel", TarEntryType.SymbolicLink, "../../.."));
    }

    [Fact]
    public async Task A_link_loop_is_refused_clearly()
    {
        var tar = Tar((TarEntryType.SymbolicLink, "a", "b", null), (TarEntryType.SymbolicLink, "b", "a", null), (TarEntryType.RegularFile, "a/x", null, "x"));
        (await Should.ThrowAsync<BuildException>(() => ConfineAsync(tar, "/t"))).Message.ShouldContain("too many levels of symbolic links");
    }

    /// <summary>An image whose paths under the destination are <paramref name="paths"/> (a link's value is its target,
    /// a directory's is "/" at the end of its key); it records what it was asked.</summary>
    private static (AddArchive.ImageLookup Lookup, List<string> Asked) Image(Dictionary<string, string?> paths)
    {
        var asked = new List<string>();
        AddArchive.ImageLookup lookup = (path, _) =>
        {
            asked.Add(path);
            if (paths.ContainsKey(path + "/")) return Task.FromResult(AddArchive.ImagePath.Directory);
            return Task.FromResult(paths.TryGetValue(path, out var link) ? new AddArchive.ImagePath(true, false, link) : AddArchive.ImagePath.Missing);
        };
        return (lookup, asked);
    }

    [Fact]
    public async Task Entries_through_a_link_the_image_already_has_stay_under_the_destination()
    {
        // What DOCKER_BUILDKIT=0 docker build does (measured on Docker 20.10: the conformance case add-tar-image-links).
        var (image, asked) = Image(new()
        {
            ["link"] = "/", ["sub/"] = null, ["sub/up"] = "../../..", ["abs"] = "/etc", ["inner/"] = null, ["rel"] = "inner", ["repl"] = "/",
        });
        var tar = Tar(
            (TarEntryType.RegularFile, "link/etc/passwd", null, "evil"),
            (TarEntryType.RegularFile, "sub/up/etc/group", null, "g"),
            (TarEntryType.RegularFile, "abs/hostname", null, "h"),
            (TarEntryType.RegularFile, "rel/z", null, "z"),
            (TarEntryType.Directory, "repl/", null, null),
            (TarEntryType.RegularFile, "repl/q", null, "q"),
            (TarEntryType.RegularFile, "plain/f", null, "f"),
            (TarEntryType.HardLink, "hl", "link/etc/passwd", null));
        var entries = (await ConfineAsync(tar, "/t", image))!;
        entries.ShouldNotBeNull();
        entries.Select(e => e.Name).ShouldBe([
            "t/etc/passwd", "t/etc/group", "t/etc/hostname", "t/inner/z", "t/repl/", "t/repl/q", "t/plain/f", "t/hl"]);
        entries.Single(e => e.Name == "t/hl").Link.ShouldBe("t/etc/passwd");
        // Nothing is asked below a path the image does not have as a directory, nor twice.
        asked.ShouldBe(asked.Distinct().ToList());
        asked.ShouldNotContain("plain/f");
        asked.ShouldNotContain("repl/q");
    }

    [Fact]
    public async Task An_image_without_links_on_the_way_leaves_the_archive_as_it_is()
    {
        var (image, asked) = Image(new() { ["d/"] = null, ["d/l"] = "/" });
        var tar = Tar((TarEntryType.Directory, "d/", null, null), (TarEntryType.RegularFile, "d/f", null, "x"), (TarEntryType.RegularFile, "e/f", null, "y"),
            (TarEntryType.SymbolicLink, "d/l", "/etc", null), (TarEntryType.RegularFile, "d/l2", null, "z"));
        (await ConfineAsync(tar, "/t", image)).ShouldBeNull();
        asked.ShouldContain("d");
        // The archive replaced the image's link d/l with its own link, which is not followed by what comes after it.
        var replaced = Tar((TarEntryType.RegularFile, "d/l", null, "now a file"), (TarEntryType.RegularFile, "d/l2", null, "z"));
        (await ConfineAsync(replaced, "/t", Image(new() { ["d/"] = null, ["d/l"] = "/" }).Lookup)).ShouldBeNull();
    }

    [Fact]
    public async Task Names_that_are_not_utf8_keep_every_byte_through_the_rewrite()
    {
        // lnk\xe9 -> top\xe9, then lnk\xe9/via\xff: the rewrite puts it at top\xe9/via\xff, as docker's chroot does.
        byte[] top = [.. "top"u8, 0xE9], lnk = [.. "lnk"u8, 0xE9], via = [.. "via"u8, 0xFF];
        using var tar = new MemoryStream();
        await using (var writer = new LayerTarWriter(tar, leaveOpen: true))
        {
            await writer.WriteEntryAsync(new LayerEntry { Path = LayerPath.FromBytes(top), Type = LayerEntryType.Directory, Mode = 0x1ED }, null, default);
            await writer.WriteEntryAsync(new LayerEntry { Path = LayerPath.FromBytes(lnk), Type = LayerEntryType.Symlink, LinkTarget = top }, null, default);
            await writer.WriteEntryAsync(new LayerEntry { Path = LayerPath.FromBytes([.. lnk, (byte)'/', .. via]), Type = LayerEntryType.RegularFile, Size = 2, Uid = 7 },
                new MemoryStream("hi"u8.ToArray()), default);
            await writer.FinishAsync(default);
        }
        var path = File("names.tar", tar.ToArray());
        using var output = new MemoryStream();
        (await AddArchive.TryConfineAsync(path, "/x", output, CancellationToken.None)).ShouldBeTrue();
        output.Position = 0;
        var read = new List<(byte[] Name, LayerEntry Entry)>();
        await using (var reader = new LayerTarReader(output, leaveOpen: true, namesAsWritten: true))
        {
            while (await reader.ReadNextAsync(default) is { } e) read.Add((reader.NameAsWritten.ToArray(), e));
        }
        read.Select(r => Convert.ToHexString(r.Name)).ShouldBe([
            Convert.ToHexString([.. "x/"u8, .. top, (byte)'/']),
            Convert.ToHexString([.. "x/"u8, .. lnk]),
            Convert.ToHexString([.. "x/"u8, .. top, (byte)'/', .. via])]);
        read[1].Entry.LinkTarget.ShouldBe(top);
        read[2].Entry.Uid.ShouldBe(7);
        read[2].Entry.Size.ShouldBe(2);
    }
}
