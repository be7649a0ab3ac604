using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Index;

namespace LayerTool.Image.Tests.Layers;

/// <summary>
/// Random layer stacks (fixed seeds): whatever the churn, base + new layer must reproduce the final
/// filesystem exactly (the harness verifies it both ways). 2,000 seeds passed locally; 200 run here.
/// </summary>
public class RandomSquashTests
{
    private static readonly string[] Dirs = ["a", "a/x", "a/y", "b", "b/x", "c"];
    private static readonly string[] Names = ["f", "g", "h", ".hidden", "f.wh.x"];

    public static TheoryData<int> Seeds() => SeedRange(200);

    /// <summary>Seeds 1..<paramref name="count"/> for the random tests.</summary>
    internal static TheoryData<int> SeedRange(int count)
    {
        var data = new TheoryData<int>();
        for (var i = 1; i <= count; i++) data.Add(i);
        return data;
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public async Task Squash_reproduces_the_final_filesystem(int seed)
    {
        var (baseLayers, layers) = await RandomStackAsync(new Random(seed));
        await DiffHarness.SquashAsync(baseLayers, layers);
    }

    /// <summary>A random final stack and a base (a prefix of it, an unrelated layer, or scratch), all valid.</summary>
    internal static async Task<(List<byte[]> Base, List<byte[]> Final)> RandomStackAsync(Random rnd)
    {
        var layers = new List<byte[]>();
        var count = rnd.Next(2, 9);
        for (var i = 0; i < count; i++)
        {
            var layer = RandomLayer(rnd);
            // Keep only stacks the applier accepts (e.g. no link to a path a whiteout removed).
            try
            {
                await FsIndex.FromLayersAsync(layers.Append(layer).Select(DiffHarness.Opener), default);
                layers.Add(layer);
            }
            catch (ImageFormatException)
            {
            }
        }
        var split = rnd.Next(0, layers.Count + 1);
        List<byte[]> baseLayers = rnd.Next(4) == 0 ? [RandomLayer(rnd)] : [.. layers.Take(split)];
        try
        {
            await FsIndex.FromLayersAsync(baseLayers.Select(DiffHarness.Opener), default);
        }
        catch (ImageFormatException)
        {
            baseLayers = [];
        }
        return (baseLayers, layers);
    }

    private static byte[] RandomLayer(Random rnd)
    {
        var b = new TarBuilder();
        var used = new HashSet<string>();
        var files = new List<string>();
        var ops = rnd.Next(1, 14);
        for (var i = 0; i < ops; i++)
        {
            var dir = Dirs[rnd.Next(Dirs.Length)];
            var path = dir + "/" + Names[rnd.Next(Names.Length)];
            var op = rnd.Next(12);
            if (op == 0 && used.Add(dir)) b.Dir(dir, mode: rnd.Next(2) == 0 ? 0x1ED : 0x3FF | 0x200, uid: rnd.Next(2));
            else if (op == 1 && used.Add(Whiteouts.For(LayerPath.Parse(dir)).ToString())) b.Whiteout(dir);
            else if (op == 2 && used.Add(Whiteouts.OpaqueMarker(LayerPath.Parse(dir)).ToString())) b.Opaque(dir);
            else if (op == 3 && used.Add(Whiteouts.For(LayerPath.Parse(path)).ToString())) b.Whiteout(path);
            else if (op == 4 && files.Count > 0 && used.Add(path)) b.HardLink(path, files[rnd.Next(files.Count)]);
            else if (op == 5 && used.Add(path)) b.Symlink(path, rnd.Next(2) == 0 ? "/etc" : "../f");
            else if (op == 6 && used.Add(path))
            {
                b.Fifo(path);
                files.Add(path); // FIFOs can be hard-linked too
            }
            else if (op == 7 && used.Add(path)) b.Dir(path);
            else if (used.Add(path))
            {
                b.File(path, "content-" + rnd.Next(3), mode: rnd.Next(4) == 0 ? 0x9ED : 0x1A4, uid: rnd.Next(3) == 0 ? 1000 : 0,
                    mtime: TarBuilder.Time.AddSeconds(rnd.Next(2)));
                files.Add(path);
            }
        }
        return b.Build();
    }
}
