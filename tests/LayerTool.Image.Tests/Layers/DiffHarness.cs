using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Content;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Layers.Index;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.Image.Tests.Layers;

/// <summary>Runs a squash in memory: base layers, final layers → new layer, checked both ways.</summary>
internal static class DiffHarness
{
    internal sealed record Outcome(LayerDiffResult Result, byte[] Layer, List<(LayerEntry Entry, byte[] Content)> Entries, FsIndex Base, FsIndex Final)
    {
        /// <summary>Entry names as in the tar: directories with a trailing slash.</summary>
        public IEnumerable<string> Names => Entries.Select(e => Show(e.Entry));

        public LayerEntry Get(string name) => Entries.Single(e => Show(e.Entry) == name).Entry;

        public byte[] ContentOf(string name) => Entries.Single(e => Show(e.Entry) == name).Content;

        private static string Show(LayerEntry e) => e.Name + (e.IsDirectory ? "/" : "");
    }

    public static Func<CancellationToken, Task<Stream>> Opener(byte[] tar) => _ => Task.FromResult<Stream>(new MemoryStream(tar, writable: false));

    public static async Task<byte[]> FlattenAsync(IEnumerable<byte[]> layers)
    {
        using var ms = new MemoryStream();
        await LayerFlattener.FlattenAsync([.. layers.Select(Opener)], ms, CancellationToken.None);
        return ms.ToArray();
    }

    public static async Task<Outcome> SquashAsync(IEnumerable<byte[]> baseLayers, IEnumerable<byte[]> finalLayers, LayerDiffOptions? options = null)
    {
        var baseIndex = await FsIndex.FromLayersAsync(baseLayers.Select(Opener), CancellationToken.None);
        var finalList = finalLayers.ToList();
        var flat = await FlattenAsync(finalList);
        options ??= new LayerDiffOptions();
        options = options with { ReopenContent = options.ReopenContent ?? ContentReopeners.FromTar(Opener(flat)) };
        using var output = new MemoryStream();
        await using var reader = new LayerTarReader(new TarCodecTests.NonSeekable(flat));
        var result = await LayerDiff.WriteAsync(baseIndex, reader, output, options, CancellationToken.None);
        var layer = output.ToArray();

        // The layer's own digest and size are what the result says.
        result.Size.ShouldBe(layer.Length);
        result.DiffId.ShouldBe("sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(layer)));

        // The final index built on the way equals one built independently from the layers...
        var independent = await FsIndex.FromLayersAsync(finalList.Select(Opener), CancellationToken.None);
        LayerVerifier.Compare(independent, result.FinalIndex).ShouldBeEmpty();
        // ...and base + new layer reproduces it exactly.
        var diffs = await LayerVerifier.VerifyAsync(baseIndex, new MemoryStream(layer), result.FinalIndex, CancellationToken.None);
        diffs.ShouldBeEmpty(string.Join("\n", diffs));
        // The entries the writer recorded verify the same way, and are what a reader gets back from the layer.
        result.WrittenEntries.ShouldNotBeNull();
        var fromRecord = await LayerVerifier.VerifyWritten(baseIndex, result.WrittenEntries, result.FinalIndex, CancellationToken.None);
        fromRecord.ShouldBeEmpty(string.Join("\n", fromRecord));
        var reread = await TarBuilder.ReadAllAsync(layer);
        result.WrittenEntries.Count.ShouldBe(reread.Count);
        foreach (var (w, (e, content)) in result.WrittenEntries.Zip(reread))
        {
            w.Entry.Path.ShouldBe(e.Path);
            LayerVerifier.Describe(new FsIndexEntry(w.Entry, w.ContentHash, null), new FsIndexEntry(e,
                e.Type == LayerEntryType.RegularFile ? System.Security.Cryptography.SHA256.HashData(content) : null, null)).ShouldBeNull(e.Name);
        }
        var entries = await TarBuilder.ReadAllAsync(layer);
        entries.Select(e => e.Entry.Path).Distinct().Count().ShouldBe(entries.Count, "no path twice in a layer");

        // A measuring pass (no content read unless compared) predicts the layer's exact size and entries.
        await using (var reader3 = new LayerTarReader(new MemoryStream(flat)))
        using (var measured = await LayerDiff.WriteAsync(baseIndex, reader3, Stream.Null, options with { MeasureOnly = true, ReopenContent = ContentReopeners.FromTar(Opener(flat)) }, CancellationToken.None))
        {
            measured.Size.ShouldBe(layer.Length);
            measured.Entries.ShouldBe(result.Entries);
            measured.Whiteouts.ShouldBe(result.Whiteouts);
        }
        // Without hashing what it writes, the same layer comes out, and its log verifies against the final index.
        await using (var reader4 = new LayerTarReader(new MemoryStream(flat)))
        using (var unhashedLayer = new MemoryStream())
        using (var unhashed = await LayerDiff.WriteAsync(baseIndex, reader4, unhashedLayer, options with { HashWrittenContent = false, ReopenContent = ContentReopeners.FromTar(Opener(flat)) }, CancellationToken.None))
        {
            unhashed.DiffId.ShouldBe(result.DiffId);
            unhashed.WrittenEntries.ShouldNotBeNull();
            var check = await LayerVerifier.VerifyWritten(baseIndex, unhashed.WrittenEntries, unhashed.FinalIndex, CancellationToken.None);
            check.ShouldBeEmpty(string.Join("\n", check));
        }
        // Without the diffID (a second pass whose reader checks it), the same bytes.
        await using (var reader5 = new LayerTarReader(new MemoryStream(flat)))
        using (var again = new MemoryStream())
        using (var undigested = await LayerDiff.WriteAsync(baseIndex, reader5, again, options with { HashLayer = false, HashWrittenContent = false, ReopenContent = ContentReopeners.FromTar(Opener(flat)) }, CancellationToken.None))
        {
            again.ToArray().ShouldBe(layer);
            undigested.Size.ShouldBe(layer.Length);
            undigested.DiffId.ShouldBe("sha256:" + new string('0', 64));
        }

        // The tree-building check (an independent implementation) agrees.
        (await LayerVerifier.VerifyInMemoryAsync(baseIndex, new MemoryStream(layer), result.FinalIndex, CancellationToken.None)).ShouldBeEmpty();
        // The same diff from the base's on-disk form (what the squash walks) writes the same layer.
        using (var ms = new MemoryStream())
        {
            FsIndexSerializer.Write(baseIndex, ms);
            ms.Position = 0;
            var onDisk = FsIndexSerializer.Read(ms);
            using var again = new MemoryStream();
            await using var reader2 = new LayerTarReader(new MemoryStream(flat));
            var second = await LayerDiff.WriteAsync(onDisk, reader2, again, options with { ReopenContent = ContentReopeners.FromTar(Opener(flat)) }, CancellationToken.None);
            second.DiffId.ShouldBe(result.DiffId);
            (await LayerVerifier.VerifyAsync(onDisk, new MemoryStream(layer), second.FinalIndex, CancellationToken.None)).ShouldBeEmpty();
        }
        // Straight from the final layers (an archive's squash: merged on disk with the contents spooled, or the
        // flattened tar when the merge falls back): the same layer again.
        using (var third = new MemoryStream())
        {
            var fromLayers = await LayerDiff.WriteFromLayersAsync(baseIndex, [.. finalList.Select(Opener)], third, options with { ReopenContent = null }, CancellationToken.None);
            fromLayers.DiffId.ShouldBe(result.DiffId);
        }
        return new Outcome(result, layer, entries, baseIndex, result.FinalIndex);
    }
}
