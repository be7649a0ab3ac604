using System.Text.Json.Nodes;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Index;
using LayerTool.Image.Tests.Layers;

namespace LayerTool.Image.Tests.Rebase;

/// <summary>A layer tar held in memory (test images are tiny).</summary>
internal sealed class MemoryLayer(byte[] tar) : ILayer
{
    public Digest DiffId { get; } = Digest.Compute(tar);

    public Descriptor? Descriptor => null;

    public byte[] Tar => tar;

    public Stream Open(CancellationToken cancellationToken) => new MemoryStream(tar, writable: false);
}

/// <summary>Synthetic images for the rebase tests: configs written by hand, layers built with <see cref="TarBuilder"/>.</summary>
internal static class RebaseTestImages
{
    /// <summary>An image of these layers; history: one entry per layer (created_by = <paramref name="name"/> + index),
    /// plus the <paramref name="emptyAfter"/> empty entries after the entry of layer i (key i; -1 = before every layer).</summary>
    public static ComposedImage MakeImage(string name, IReadOnlyList<MemoryLayer> layers, JsonObject? config = null,
        IReadOnlyDictionary<int, string[]>? emptyAfter = null, IReadOnlyList<JsonObject>? historyPrefix = null)
    {
        var history = new JsonArray();
        foreach (var h in historyPrefix ?? []) history.Add((JsonNode)h.DeepClone());
        AddEmpty(-1);
        for (var i = historyPrefix is null ? 0 : CountLayers(historyPrefix); i < layers.Count; i++)
        {
            history.Add((JsonNode)new JsonObject { ["created"] = "2024-01-01T00:00:00Z", ["created_by"] = $"{name} layer {i}" });
            AddEmpty(i);
        }

        var json = new JsonObject
        {
            ["architecture"] = "amd64",
            ["os"] = "linux",
            ["created"] = "2024-01-02T00:00:00Z",
            ["config"] = config?.DeepClone() ?? new JsonObject(),
            ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = Strings(layers.Select(l => l.DiffId.ToString())) },
            ["history"] = history,
        };
        return new ComposedImage(ImageConfig.FromJson(json), [.. layers]);

        void AddEmpty(int after)
        {
            if (emptyAfter is null || !emptyAfter.TryGetValue(after, out var entries)) return;
            foreach (var e in entries)
                history.Add((JsonNode)new JsonObject { ["created"] = "2024-01-01T00:00:00Z", ["created_by"] = e, ["empty_layer"] = true });
        }
    }

    /// <summary>The history entries of <paramref name="image"/> as JSON objects (to start another image's history with).</summary>
    public static IReadOnlyList<JsonObject> HistoryOf(IImage image) =>
        [.. ((JsonArray)image.Config.ToJson()["history"]!).Select(n => (JsonObject)n!.DeepClone())];

    public static JsonArray Strings(IEnumerable<string> items) => [.. items.Select(s => (JsonNode)JsonValue.Create(s))];

    public static MemoryLayer Layer(Action<TarBuilder> build)
    {
        var builder = new TarBuilder();
        build(builder);
        return new MemoryLayer(builder.Build());
    }

    public static Task<FsIndex> IndexAsync(IImage image) =>
        FsIndex.FromLayersAsync(image.Layers.Select(l => (Func<CancellationToken, Task<Stream>>)(ct => Task.FromResult(l.Open(ct)))), CancellationToken.None);

    private static int CountLayers(IReadOnlyList<JsonObject> history) => history.Count(h => h["empty_layer"]?.GetValue<bool>() != true);
}
