using System.Globalization;
using System.Text;
using LayerTool.Image.Layers;
using Xunit.Abstractions;

namespace LayerTool.Image.Tests.Layers;

/// <summary>
/// How much memory a base index costs per path once read from the cache (the squash's warm path): a
/// synthetic filesystem of 200,000 paths (400 directories of 500 files, names and owners like a distro's).
/// Measured: 504 B/path with a sorted dictionary per directory and an owner-name string per path; 344 B/path
/// with sorted child arrays and shared owner names. The bound guards against regressions; the 200 MB peak
/// for any image size needs a more compact (or disk-backed) index still (docs/readme/31-fast-path.md).
/// </summary>
public class FsIndexMemoryTests(ITestOutputHelper output)
{
    private const int Directories = 400;
    private const int FilesPerDirectory = 500;

    [Fact]
    public async Task A_cached_index_costs_under_400_bytes_per_path()
    {
        byte[] serialized;
        {
            var index = await FsIndex.FromFlattenedAsync(new SyntheticTree(), CancellationToken.None);
            using var buffer = new MemoryStream();
            FsIndexSerializer.Write(index, buffer);
            serialized = buffer.ToArray();
        }

        var before = GC.GetTotalMemory(forceFullCollection: true);
        var read = FsIndexSerializer.Read(new MemoryStream(serialized, writable: false));
        var after = GC.GetTotalMemory(forceFullCollection: true);
        var perPath = (double)(after - before) / read.Count;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{read.Count} paths, {after - before} bytes, {perPath:F0} B/path (serialized {serialized.Length / (double)read.Count:F0} B/path)"));

        read.Count.ShouldBe(Directories * (FilesPerDirectory + 1) + 2);
        perPath.ShouldBeLessThan(400);
        GC.KeepAlive(read);
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
        private readonly IEnumerator<LayerEntry> _entries = Entries().GetEnumerator();

        public Stream Content => Stream.Null;

        public ValueTask<LayerEntry?> ReadNextAsync(CancellationToken cancellationToken) =>
            ValueTask.FromResult(_entries.MoveNext() ? _entries.Current : null);

        private static IEnumerable<LayerEntry> Entries()
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
