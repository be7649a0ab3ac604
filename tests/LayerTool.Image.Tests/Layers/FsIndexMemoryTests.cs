using System.Globalization;
using System.Text;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Layers.Index;
using LayerTool.Image.Layers.Tar;
using Xunit.Abstractions;

namespace LayerTool.Image.Tests.Layers;

/// <summary>
/// How much memory an index costs per path: a synthetic filesystem of 200,000 paths (400 directories of 500
/// files, names and owners like a distro's). In memory (a tree): measured 504 B/path with a sorted dictionary
/// per directory, 344 B/path with sorted child arrays and shared owner names. On disk (what the squash uses,
/// FsIndexStore): only one key in 64 stays in memory, about 2 B/path; a whole diff of a 200k-path base plus
/// its streaming verification retains nothing that grows with the paths.
/// </summary>
[Collection(MemoryMeasurements.Name)]
public class FsIndexMemoryTests(ITestOutputHelper output)
{
    private const int Directories = 400;
    private const int FilesPerDirectory = 500;

    [Fact]
    public async Task A_tree_index_costs_under_400_bytes_per_path()
    {
        var before = GC.GetTotalMemory(forceFullCollection: true);
        var index = await FsIndex.FromFlattenedAsync(new SyntheticTree(), CancellationToken.None);
        var after = GC.GetTotalMemory(forceFullCollection: true);
        var perPath = (double)(after - before) / index.Count;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"tree: {index.Count} paths, {after - before} bytes, {perPath:F0} B/path"));
        index.Count.ShouldBe(Directories * (FilesPerDirectory + 1) + 2);
        perPath.ShouldBeLessThan(400);
        GC.KeepAlive(index);
    }

    [Fact]
    public async Task An_on_disk_index_keeps_a_few_bytes_per_path_in_memory()
    {
        var before = GC.GetTotalMemory(forceFullCollection: true);
        var index = await FsIndex.FromFlattenedOnDiskAsync(new SyntheticTree(), null, CancellationToken.None);
        var after = GC.GetTotalMemory(forceFullCollection: true);
        var perPath = (double)(after - before) / index.Count;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"on disk: {index.Count} paths, {after - before} bytes, {perPath:F1} B/path"));
        index.IsOnDisk.ShouldBeTrue();
        index.Count.ShouldBe(Directories * (FilesPerDirectory + 1) + 2);
        perPath.ShouldBeLessThan(8);
        // Lookups and walks read the file.
        index.Find(LayerPath.Parse("usr/lib/pkg-0399/lib-component-00499.so.1")).ShouldNotBeNull();
        index.Find(LayerPath.Parse("usr/lib/pkg-0399/lib-component-00500.so.1")).ShouldBeNull();
        index.Entries.Count().ShouldBe(index.Count);
        GC.KeepAlive(index);
    }

    /// <summary>A diff onto a 200k-path on-disk base, and its verification, keep nothing per path: the final
    /// index and the written-entry log are on disk too.</summary>
    [Fact]
    public async Task A_diff_and_its_verification_keep_memory_flat_over_a_big_base()
    {
        var baseIndex = await FsIndex.FromFlattenedOnDiskAsync(new SyntheticTree(), null, CancellationToken.None);
        var before = GC.GetTotalMemory(forceFullCollection: true);
        using var layer = new MemoryStream();
        var result = await LayerDiff.WriteAsync(baseIndex, new SyntheticTree(changeEvery: 2000), layer, null, CancellationToken.None);
        var diffs = await LayerVerifier.VerifyAsync(baseIndex, new MemoryStream(layer.ToArray()), result.FinalIndex, CancellationToken.None);
        var written = await LayerVerifier.VerifyWritten(baseIndex, result.WrittenEntries!, result.FinalIndex, CancellationToken.None);
        var after = GC.GetTotalMemory(forceFullCollection: true);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"diff + verify over {baseIndex.Count} paths: {after - before} bytes retained, layer {layer.Length} bytes"));
        diffs.ShouldBeEmpty();
        written.ShouldBeEmpty();
        // usr/, usr/lib/, and 100 changed files each with its directory.
        result.Entries.ShouldBe(2 + 2 * (Directories * FilesPerDirectory / 2000));
        result.FinalIndex.IsOnDisk.ShouldBeTrue();
        (after - before).ShouldBeLessThan(6L << 20);
        GC.KeepAlive(result);
    }

    /// <summary>
    /// Verification applies the new layer on top of the base index: that must cost memory for what the layer
    /// touches (copy on write), not a second copy of the base. Measured: a full copy of this 200k-path base was
    /// ~70 MB; the copy-on-write application of a 100-file layer 0.8 MB.
    /// </summary>
    [Fact]
    public async Task Applying_a_small_layer_to_a_big_index_does_not_copy_it()
    {
        var index = await FsIndex.FromFlattenedAsync(new SyntheticTree(), CancellationToken.None);
        var builder = new TarBuilder();
        for (var i = 0; i < 100; i++) builder.File(string.Create(CultureInfo.InvariantCulture, $"usr/lib/pkg-{i * 4:D4}/changed-{i}"), "x");
        var layer = builder.Build();

        var before = GC.GetTotalMemory(forceFullCollection: true);
        await using var reader = new LayerTarReader(new MemoryStream(layer));
        var applied = await index.ApplyLayerAsync(reader, CancellationToken.None);
        var after = GC.GetTotalMemory(forceFullCollection: true);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"applying 100 files onto {index.Count} paths: {after - before} bytes"));

        applied.Count.ShouldBe(index.Count + 100);
        (after - before).ShouldBeLessThan(4L << 20);
        GC.KeepAlive(index);
        GC.KeepAlive(applied);
    }

    /// <summary>usr/, usr/lib/, usr/lib/pkg-NNNN/ with files lib-component-NNNNN.so.1, in walk order.</summary>
    private sealed class SyntheticTree : ILayerEntrySource
    {
        private readonly IEnumerator<LayerEntry> _entries;
        private Stream _content = Stream.Null;

        /// <param name="changeEvery">0: every file empty; N: every Nth file holds one byte instead.</param>
        public SyntheticTree(int changeEvery = 0) => _entries = Entries(changeEvery).GetEnumerator();

        public Stream Content => _content;

        public ValueTask<LayerEntry?> ReadNextAsync(CancellationToken cancellationToken)
        {
            if (!_entries.MoveNext()) return ValueTask.FromResult<LayerEntry?>(null);
            _content = _entries.Current.Size == 0 ? Stream.Null : new MemoryStream([42]);
            return ValueTask.FromResult<LayerEntry?>(_entries.Current);
        }

        private static IEnumerable<LayerEntry> Entries(int changeEvery)
        {
            yield return Dir("usr");
            yield return Dir("usr/lib");
            for (var d = 0; d < Directories; d++)
            {
                var dir = string.Create(CultureInfo.InvariantCulture, $"usr/lib/pkg-{d:D4}");
                yield return Dir(dir);
                for (var f = 0; f < FilesPerDirectory; f++)
                {
                    yield return new LayerEntry
                    {
                        Path = LayerPath.FromBytes(Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{dir}/lib-component-{f:D5}.so.1"))),
                        Type = LayerEntryType.RegularFile,
                        Size = changeEvery > 0 && (d * FilesPerDirectory + f) % changeEvery == 0 ? 1 : 0,
                        Mode = 0x1A4,
                        UserName = "root",
                        GroupName = "root",
                        ModificationTime = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000),
                    };
                }
            }
        }

        private static LayerEntry Dir(string path) => new()
        {
            Path = LayerPath.Parse(path),
            Type = LayerEntryType.Directory,
            Mode = 0x1ED,
            UserName = "root",
            GroupName = "root",
        };
    }
}

/// <summary>Memory measurements read the whole heap: no other test may run beside them.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MemoryMeasurements
{
    public const string Name = "memory measurements";
}
