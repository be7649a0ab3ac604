using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Content;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Layers.Index;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.Image.Tests.Layers;

/// <summary>
/// Flattened filesystems written by GNU tar (<c>--sort=name</c>, the same walk order as <c>docker export</c>,
/// <c>./</c> prefixes, GNU long names, hard links): a base directory and the same directory after a few
/// typical changes (see the test for the list).
/// </summary>
public class ExportFixtureTests
{
    [Fact]
    public async Task Diff_of_two_gnu_tar_exports()
    {
        var baseTar = await File.ReadAllBytesAsync(TarBuilder.DataPath("export-base.tar"));
        var finalTar = await File.ReadAllBytesAsync(TarBuilder.DataPath("export-final.tar"));
        FsIndex baseIndex;
        await using (var r = new LayerTarReader(new MemoryStream(baseTar))) baseIndex = await FsIndex.FromFlattenedAsync(r, default);

        using var output = new MemoryStream();
        LayerDiffResult result;
        await using (var r = new LayerTarReader(new TarCodecTests.NonSeekable(finalTar)))
        {
            result = await LayerDiff.WriteAsync(baseIndex, r, output, new LayerDiffOptions { ReopenContent = ContentReopeners.FromTar(DiffHarness.Opener(finalTar)) }, default);
        }

        var names = (await TarBuilder.ReadAllAsync(output.ToArray())).Select(e => e.Entry.Name).ToList();
        // etc/passwd: same size and mtime, other bytes; var/lib/state: rewritten with the same bytes (absent);
        // usr/share/doc deleted (one whiteout); bin/sh setuid (its hard link bin/bash comes along);
        // bin/dir a new hard link to bin/ls; opt: non-UTF-8 names, a path over 250 bytes, a FIFO.
        names.Where(n => !n.StartsWith("opt", StringComparison.Ordinal)).ShouldBe(
            ["bin", "bin/bash", "bin/dir", "bin/ls", "bin/sh", "etc", "etc/passwd", "usr", "usr/share", "usr/share/.wh.doc"]);
        names.Count(n => n.StartsWith("opt", StringComparison.Ordinal)).ShouldBe(8);
        names.ShouldContain(n => n.Length > 250);
        names.ShouldContain("opt/caf\\xe9/\\xff");

        await using (var r = new LayerTarReader(new MemoryStream(finalTar)))
        {
            var finalIndex = await FsIndex.FromFlattenedAsync(r, default);
            LayerVerifier.Compare(finalIndex, result.FinalIndex).ShouldBeEmpty();
            var diffs = await LayerVerifier.VerifyAsync(baseIndex, new MemoryStream(output.ToArray()), finalIndex, default);
            diffs.ShouldBeEmpty(string.Join("\n", diffs));
            finalIndex.Find(LayerPath.Parse("bin/sh"))!.HardLinkOf.ShouldBe(LayerPath.Parse("bin/bash"));
        }
    }
}
