using System.Diagnostics;
using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace LayerTool.IntegrationTests.Build;

/// <summary>One filesystem entry as the conformance suite compares it (never times).</summary>
public sealed record FsEntry(string Path, string Type, int Mode, int Uid, int Gid, long Size, string? Sha256, string? Link)
{
    public override string ToString() => $"{Path} {Type} {Mode:x} {Uid}:{Gid} {Size} {Sha256?[..12]} {Link}";
}

/// <summary>An image's comparable config fields and its flattened filesystem, read through the docker CLI.</summary>
public sealed record ImageSnapshot(IReadOnlyDictionary<string, string> Config, IReadOnlyList<FsEntry> Files, int LayerCount, IReadOnlyList<string> DiffIds)
{
    /// <summary>The config fields the issue names.</summary>
    public static readonly string[] ConfigFields =
        ["Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes", "Labels", "Healthcheck", "StopSignal", "Shell", "OnBuild"];

    /// <summary>Paths the engine's init layer puts into every container (not the image's own).</summary>
    private static readonly string[] InitPaths =
        [".dockerenv", "etc/hosts", "etc/hostname", "etc/resolv.conf", "etc/mtab", "dev", "proc", "sys"];

    public static async Task<ImageSnapshot> TakeAsync(EngineFixture engine, string image)
    {
        var json = await engine.DockerAsync(["image", "inspect", image]);
        var root = JsonNode.Parse(json)!.AsArray()[0]!;
        var config = root[nameof(Config)]?.AsObject();
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var f in ConfigFields) fields[f] = Normalize(config?[f]);
        var diffIds = root["RootFS"]?["Layers"]?.AsArray().Select(l => l!.GetValue<string>()).ToList() ?? [];

        var container = (await engine.DockerAsync(["create", "--label", EngineFixture.TestLabel + "=1", image, "true"])).Trim();
        try
        {
            return new ImageSnapshot(fields, await ExportAsync(engine, container), diffIds.Count, diffIds);
        }
        finally
        {
            await engine.DockerAsync(["rm", "-f", "-v", container]);
        }
    }

    /// <summary>Empty collections and null are one thing here (docker prints either, depending on how a field was set).</summary>
    private static string Normalize(JsonNode? node) => node switch
    {
        null => "null",
        JsonArray { Count: 0 } => "null",
        JsonObject { Count: 0 } => "null",
        JsonValue v when v.GetValueKind() == JsonValueKind.String && v.GetValue<string>().Length == 0 => "null",
        JsonObject o => JsonSerializer.Serialize(new SortedDictionary<string, JsonNode?>(o.ToDictionary(kv => kv.Key, kv => kv.Value?.DeepClone()), StringComparer.Ordinal)),
        _ => node.ToJsonString(),
    };

    private static async Task<List<FsEntry>> ExportAsync(EngineFixture engine, string container)
    {
        var psi = new ProcessStartInfo("docker") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("export");
        psi.ArgumentList.Add(container);
        psi.Environment["DOCKER_HOST"] = engine.DockerHost;
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var list = new List<FsEntry>();
        using (var reader = new TarReader(p.StandardOutput.BaseStream))
        {
            while (await reader.GetNextEntryAsync() is { } e)
            {
                var path = e.Name.TrimEnd('/');
                if (path.StartsWith("./", StringComparison.Ordinal)) path = path[2..];
                if (path.Length == 0 || InitPaths.Any(i => path == i || path.StartsWith(i + "/", StringComparison.Ordinal))) continue;
                string? sha = null;
                long size = 0;
                if (e.DataStream is not null && e.EntryType is TarEntryType.RegularFile or TarEntryType.V7RegularFile)
                {
                    sha = Convert.ToHexStringLower(await SHA256.HashDataAsync(e.DataStream));
                    size = e.Length;
                }
                var link = e.EntryType is TarEntryType.SymbolicLink or TarEntryType.HardLink ? e.LinkName : null;
                list.Add(new FsEntry(path, e.EntryType.ToString(), (int)e.Mode, e.Uid, e.Gid, size, sha, link));
            }
        }
        await p.WaitForExitAsync();
        if (p.ExitCode != 0) throw new InvalidOperationException($"docker export failed: {await stderr}");
        return [.. list.OrderBy(x => x.Path, StringComparer.Ordinal)];
    }
}
