using System.Text.Json.Nodes;

namespace LayerTool.Image.Formats;

/// <summary>
/// One entry of a docker-archive's <c>manifest.json</c> (moby image/spec v1.2, "Combined Image JSON + Filesystem
/// Changeset Format"): the config path, the tags, and one layer path per <c>rootfs.diff_ids</c> entry.
/// Paths are relative to the archive root; Docker 25+ writes <c>blobs/sha256/&lt;hex&gt;</c> paths.
/// <c>Parent</c> (an image ID) makes <c>docker load</c> link the image to a parent it already has.
/// </summary>
public sealed record DockerArchiveManifest(string Config, IReadOnlyList<string> RepoTags, IReadOnlyList<string> Layers, string? Parent = null)
{
    /// <summary>The file name of the manifest in the archive.</summary>
    public const string FileName = "manifest.json";

    /// <summary>Reads <c>manifest.json</c>: an array of entries.</summary>
    public static IReadOnlyList<DockerArchiveManifest> ParseAll(ReadOnlySpan<byte> bytes)
    {
        var array = Json.ParseArray(bytes, FileName);
        var entries = new List<DockerArchiveManifest>(array.Count);
        for (var i = 0; i < array.Count; i++)
        {
            var where = $"{FileName}[{i}]";
            if (array[i] is not JsonObject json)
            {
                throw new ImageFormatException($"{where}: must be an object.");
            }

            entries.Add(new DockerArchiveManifest(
                Json.RequiredString(json, "Config", where),
                Json.OptionalStringList(json, "RepoTags", where) ?? [],
                Json.OptionalStringList(json, "Layers", where) ?? [],
                Json.OptionalString(json, "Parent", where)));
        }

        return entries;
    }

    /// <summary>Writes <c>manifest.json</c> compactly.</summary>
    public static byte[] ToBytes(IEnumerable<DockerArchiveManifest> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var array = new JsonArray();
        foreach (var entry in entries)
        {
            var item = new JsonObject
            {
                [nameof(Config)] = entry.Config,
                [nameof(RepoTags)] = entry.RepoTags.Count == 0 ? null : Json.StringArray(entry.RepoTags),
                [nameof(Layers)] = Json.StringArray(entry.Layers),
            };
            if (entry.Parent is not null)
            {
                item[nameof(Parent)] = entry.Parent;
            }

            array.Add((JsonNode)item);
        }

        return Json.ToBytes(array);
    }
}
