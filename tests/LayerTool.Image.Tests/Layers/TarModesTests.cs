using System.Text;
using LayerTool.Image.Formats;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.Image.Tests.Layers;

/// <summary>The codec's modes for tars that are not layers: names as written, names in the header, no diffID.</summary>
public class TarModesTests
{
    private static readonly byte[] Cafe = [.. "caf"u8, 0xE9];

    /// <summary>Several one-entry ustar tars (see <see cref="TarCodecTests.RawTar"/>) as one tar.</summary>
    private static byte[] Concat(params byte[][] tars) => [.. tars.SelectMany(t => t[..^1024]), .. new byte[1024]];

    private static async Task<List<(LayerEntry Entry, byte[] Name, byte[] Content)>> ReadAsWrittenAsync(byte[] tar)
    {
        var list = new List<(LayerEntry, byte[], byte[])>();
        await using var reader = new LayerTarReader(new MemoryStream(tar), namesAsWritten: true);
        while (await reader.ReadNextAsync(default) is { } e)
        {
            using var content = new MemoryStream();
            await reader.Content.CopyToAsync(content);
            list.Add((e, reader.NameAsWritten.ToArray(), content.ToArray()));
        }
        return list;
    }

    [Fact]
    public async Task Names_as_written_are_kept_and_confined_instead_of_refused()
    {
        var tar = Concat(
            TarCodecTests.RawTar("/", '5', ""),
            TarCodecTests.RawTar("/abs/file", '0', ""),
            TarCodecTests.RawTar("../../up", '0', ""),
            TarCodecTests.RawTar("link", '2', "/"),
            TarCodecTests.RawTar("link/etc/passwd", '0', ""),
            TarCodecTests.RawTar("hard", '1', "../link/etc/passwd"),
            TarCodecTests.RawTar("d/", '0', ""));
        var all = await ReadAsWrittenAsync(tar);
        all.Select(a => Encoding.UTF8.GetString(a.Name)).ShouldBe(["/", "/abs/file", "../../up", "link", "link/etc/passwd", "hard", "d/"]);
        all[0].Entry.Path.IsRoot.ShouldBeTrue();
        all[1].Entry.Path.ShouldBe(LayerPath.Parse("abs/file"));
        all[2].Entry.Path.ShouldBe(LayerPath.Parse("up"));
        // The tar's own symlink is not followed (a layer reader would put this at etc/passwd).
        all[4].Entry.Path.ShouldBe(LayerPath.Parse("link/etc/passwd"));
        all[5].Entry.Type.ShouldBe(LayerEntryType.HardLink);
        Encoding.UTF8.GetString(all[5].Entry.LinkTarget).ShouldBe("../link/etc/passwd");
        all[6].Entry.Type.ShouldBe(LayerEntryType.Directory);

        // The same tar read as a layer is refused at its first absolute name.
        await Should.ThrowAsync<ImageFormatException>(() => TarBuilder.ReadAllAsync(tar));
    }

    [Fact]
    public async Task A_non_utf8_tree_goes_through_reader_and_writer_byte_for_byte()
    {
        byte[] ff = [0xFF, 0xFE];
        var dir = LayerPath.FromBytes([.. "src/"u8, .. Cafe]);
        var tar = new TarBuilder()
            .Dir("src")
            .Add(new LayerEntry { Path = dir, Type = LayerEntryType.Directory, Mode = 0x1ED, ModificationTime = TarBuilder.Time })
            .File(dir.Append(ff), [7, 7], uid: 1000, gid: 1000)
            .Add(new LayerEntry { Path = dir.Append("l"), Type = LayerEntryType.Symlink, LinkTarget = ff, ModificationTime = TarBuilder.Time })
            .Add(new LayerEntry { Path = dir.Append("h"), Type = LayerEntryType.HardLink, LinkTarget = dir.Append(ff).Bytes.ToArray(), ModificationTime = TarBuilder.Time })
            .Build();
        var read = await ReadAsWrittenAsync(tar);
        read[1].Name.ShouldBe([.. dir.Bytes, (byte)'/']);
        read[2].Name.ShouldBe(dir.Append(ff).Bytes.ToArray());
        read[3].Entry.LinkTarget.ShouldBe(ff);
        read[4].Entry.LinkTarget.ShouldBe(dir.Append(ff).Bytes.ToArray());

        using var again = new MemoryStream();
        await using (var writer = new LayerTarWriter(again, leaveOpen: true, hashLayer: false))
        {
            foreach (var (entry, _, content) in read) await writer.WriteEntryAsync(entry, new MemoryStream(content), default);
            await writer.FinishAsync(default);
        }
        again.ToArray().ShouldBe(tar);
    }

    [Fact]
    public async Task Without_hashing_the_bytes_are_the_same_and_the_diff_id_is_zeros()
    {
        var entry = new LayerEntry { Path = LayerPath.Parse("f"), Type = LayerEntryType.RegularFile, Size = 3, ModificationTime = TarBuilder.Time };
        async Task<(byte[] Bytes, string DiffId)> WriteAsync(bool hash)
        {
            using var output = new MemoryStream();
            await using var writer = new LayerTarWriter(output, leaveOpen: true, hashLayer: hash);
            await writer.WriteEntryAsync(entry, new MemoryStream([1, 2, 3]), default);
            await writer.FinishAsync(default);
            return (output.ToArray(), writer.DiffId);
        }
        var hashed = await WriteAsync(true);
        var plain = await WriteAsync(false);
        plain.Bytes.ShouldBe(hashed.Bytes);
        hashed.DiffId.ShouldBe("sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(hashed.Bytes)));
        plain.DiffId.ShouldBe("sha256:" + new string('0', 64));
    }

    [Fact]
    public async Task Names_in_header_keep_a_short_non_ascii_name_out_of_pax()
    {
        byte[] name = [.. "d/"u8, .. Cafe, .. "/\u00e9t\u00e9"u8];
        var path = LayerPath.FromBytes(name);
        byte[] longName = [.. Enumerable.Repeat((byte)0xE9, 150)];
        async Task<byte[]> WriteAsync(bool inHeader, LayerPath p)
        {
            using var output = new MemoryStream();
            await using var writer = new LayerTarWriter(output, leaveOpen: true, hashLayer: false) { NamesInHeader = inHeader };
            await writer.WriteEntryAsync(new LayerEntry { Path = p, Type = LayerEntryType.Symlink, LinkTarget = Cafe }, null, default);
            await writer.FinishAsync(default);
            return output.ToArray();
        }

        var header = await WriteAsync(true, path);
        header.Length.ShouldBe(512 + 1024); // one header, no PAX record: the whole entry is in the first 1,024 bytes
        header[156].ShouldBe((byte)'2');
        header.AsSpan(0, name.Length).ToArray().ShouldBe(name);
        header.AsSpan(157, Cafe.Length).ToArray().ShouldBe(Cafe);
        var pax = await WriteAsync(false, path);
        pax[156].ShouldBe((byte)'x');

        // Both read back as the same bytes.
        foreach (var tar in new[] { header, pax })
        {
            var all = await TarBuilder.ReadAllAsync(tar);
            all.Single().Entry.Path.ShouldBe(path);
            all.Single().Entry.LinkTarget.ShouldBe(Cafe);
        }

        // A name too long for the header still takes a PAX record, marked binary.
        var tooLong = await WriteAsync(true, LayerPath.FromBytes(longName));
        tooLong[156].ShouldBe((byte)'x');
        Encoding.Latin1.GetString(tooLong).ShouldContain("hdrcharset=BINARY");
        (await TarBuilder.ReadAllAsync(tooLong)).Single().Entry.Path.Bytes.ToArray().ShouldBe(longName);
    }

    [Fact]
    public async Task The_archive_writer_writes_members_a_tar_reader_reads()
    {
        using var output = new MemoryStream();
        var tar = new TarArchiveWriter(output, TarBuilder.Time);
        tar.AddFile("manifest.json", "[]"u8);
        tar.AddFile("abc.json", "{}"u8);
        tar.Finish();
        await using var reader = new LayerTarReader(new MemoryStream(output.ToArray()), namesAsWritten: true);
        var names = new List<string>();
        while (await reader.ReadNextAsync(default) is { } e)
        {
            e.ModificationTime.ShouldBe(TarBuilder.Time);
            names.Add(e.Name + "=" + new StreamReader(reader.Content).ReadToEnd());
        }
        names.ShouldBe(["manifest.json=[]", "abc.json={}"]);
    }
}
