using System.Text.Json.Nodes;
using Docker.DotNet.Models;
using LayerTool.Image;
using LayerTool.Image.Formats;
using ImageConfig = LayerTool.Image.ImageConfig;

namespace LayerTool.Docker.Images;

/// <summary>
/// The save of an image that has no layers (<c>FROM scratch</c> with only metadata: LayerTool's own builds make
/// them), which the engine refuses ("empty export - not implemented", measured on Docker 20.10). Its filesystem is
/// empty, so the archive is only its config and manifest, the config rebuilt from the engine's inspect and
/// history: the fields that matter (container config, platform, creation time, history) are the image's, but the
/// bytes — and so the config digest — need not be the engine's.
/// </summary>
internal static class EmptyImageSave
{
    public static Stream Archive(ImageInspectResponse image, IEnumerable<ImageHistoryResponse> historyNewestFirst)
    {
        var history = new JsonArray();
        foreach (var h in historyNewestFirst.Reverse())
        {
            var entry = new JsonObject { ["created"] = Time(h.Created), ["created_by"] = h.CreatedBy ?? "" };
            if (!string.IsNullOrEmpty(h.Comment)) entry["comment"] = h.Comment;
            entry["empty_layer"] = true;
            history.Add((JsonNode)entry);
        }
        var json = new JsonObject
        {
            ["architecture"] = string.IsNullOrEmpty(image.Architecture) ? "amd64" : image.Architecture,
            ["os"] = string.IsNullOrEmpty(image.Os) ? "linux" : image.Os,
            ["created"] = image.Created is { } created ? Time(created) : ImageConfig.FormatTime(DateTimeOffset.UnixEpoch),
            ["config"] = new JsonObject(),
            ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray() },
            ["history"] = history,
        };
        if (!string.IsNullOrEmpty(image.Variant)) json["variant"] = image.Variant;
        if (!string.IsNullOrEmpty(image.Author)) json["author"] = image.Author;
        if (!string.IsNullOrEmpty(image.Comment)) json["comment"] = image.Comment;
        var config = ImageConfig.FromJson(json).WithContainerConfig(DockerConfigs.FromDocker(image.Config)).Canonicalize();
        var configName = config.Digest.Hex + ".json";
        var manifest = new JsonArray(new JsonObject
        {
            ["Config"] = configName,
            ["RepoTags"] = new JsonArray([.. (image.RepoTags ?? []).Select(t => (JsonNode)JsonValue.Create(t))]),
            ["Layers"] = new JsonArray(),
        });

        var archive = new MemoryStream();
        var writer = new TarArchiveWriter(archive, DateTimeOffset.UnixEpoch);
        writer.AddFile(configName, config.Bytes.Span);
        writer.AddFile("manifest.json", System.Text.Encoding.UTF8.GetBytes(manifest.ToJsonString()));
        writer.Finish();
        archive.Position = 0;
        return archive;
    }

    private static string Time(DateTime time) =>
        ImageConfig.FormatTime(new DateTimeOffset(time.Kind == DateTimeKind.Unspecified ? DateTime.SpecifyKind(time, DateTimeKind.Utc) : time.ToUniversalTime()));
}
