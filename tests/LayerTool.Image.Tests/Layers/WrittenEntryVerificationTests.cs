using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.Image.Tests.Layers;

/// <summary>Verification from the entries the tar writer recorded still catches a wrong layer.</summary>
public class WrittenEntryVerificationTests
{
    private static async Task<DiffHarness.Outcome> SquashAsync()
    {
        var b = new TarBuilder().Dir("etc").File("etc/passwd", "root").File("etc/hosts", "localhost").Build();
        var top = new TarBuilder().Dir("etc").File("etc/passwd", "root+user").Whiteout("etc/hosts").File("etc/new", "n").Build();
        return await DiffHarness.SquashAsync([b], [b, top]);
    }

    private static async Task<IReadOnlyList<FsDifference>> VerifyAsync(DiffHarness.Outcome o, IReadOnlyList<WrittenLayerEntry> written) =>
        await LayerVerifier.VerifyWritten(o.Base, written, o.Final, CancellationToken.None);

    [Fact]
    public async Task A_recorded_file_with_other_bytes_is_caught()
    {
        var o = await SquashAsync();
        var written = o.Result.WrittenEntries!.Select(w => w.Entry.Name == "etc/passwd" ? w with { ContentHash = new byte[32] } : w).ToList();
        var diffs = await VerifyAsync(o, written);
        diffs.Select(d => d.ToString()).ShouldBe(["etc/passwd: content differs"]);
    }

    [Fact]
    public async Task A_missing_whiteout_is_caught()
    {
        var o = await SquashAsync();
        var written = o.Result.WrittenEntries!.Where(w => !w.Entry.Name.Contains(".wh.", StringComparison.Ordinal)).ToList();
        var diffs = await VerifyAsync(o, written);
        diffs.Select(d => d.ToString()).ShouldBe(["etc/hosts: unexpected"]);
    }

    [Fact]
    public async Task A_missing_file_and_wrong_metadata_are_caught()
    {
        var o = await SquashAsync();
        var written = o.Result.WrittenEntries!
            .Where(w => w.Entry.Name != "etc/new")
            .Select(w => w.Entry.Name == "etc/passwd" ? w with { Entry = w.Entry with { Uid = 1000, Mode = 0x1FF } } : w)
            .ToList();
        var diffs = await VerifyAsync(o, written);
        diffs.Count.ShouldBe(2);
        diffs.ShouldContain(d => d.ToString() == "etc/new: missing");
        diffs.ShouldContain(d => d.ToString().StartsWith("etc/passwd: mode", StringComparison.Ordinal) && d.What.Contains("uid 0 != 1000", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_writer_records_the_hash_of_the_bytes_it_wrote()
    {
        using var output = new MemoryStream();
        await using var writer = new LayerTarWriter(output, leaveOpen: true, recordEntries: true);
        var entry = new LayerEntry { Path = LayerPath.Parse("f"), Type = LayerEntryType.RegularFile, Mode = 0x81A4, Size = 3 };
        await writer.WriteEntryAsync(entry, new MemoryStream("abc"u8.ToArray()), CancellationToken.None);
        await writer.FinishAsync(CancellationToken.None);
        var w = writer.WrittenEntries!.ShouldHaveSingleItem();
        w.ContentHash.ShouldBe(System.Security.Cryptography.SHA256.HashData("abc"u8));
        w.Entry.Mode.ShouldBe(0x1A4, "the header carries the permission bits only");
    }
}
