using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using LayerTool.IntegrationTests.Squash;

namespace LayerTool.IntegrationTests.Hardening;

/// <summary>Issue 14 (hostile and unusual images) against the real engine: what the engine does, and LayerTool matching it.</summary>
[Collection(EngineCollection.Name)]
public sealed class HardeningTests(EngineFixture engine) : IAsyncLifetime
{
    private readonly SquashHarness _h = new(engine);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private static byte[] Layer(Action<TarWriter> write)
    {
        using var ms = new MemoryStream();
        using (var w = new TarWriter(ms, TarEntryFormat.Pax, leaveOpen: true)) write(w);
        return ms.ToArray();
    }

    private static void File(TarWriter w, string name, string content, UnixFileMode mode = (UnixFileMode)0x1A4) =>
        w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name)
        {
            DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)),
            Mode = mode,
            ModificationTime = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000),
        });

    private static void Symlink(TarWriter w, string name, string target) =>
        w.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, name) { LinkName = target, Mode = (UnixFileMode)0x1FF, ModificationTime = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000) });

    /// <summary>The archive the last <see cref="LoadAsync"/> loaded (with busybox:latest in it too when on busybox).</summary>
    private string _archive = "";

    /// <summary>Loads an image made of busybox's layers (or none) and <paramref name="layers"/>, tagged <c>lt-test/NAME:RUN</c>.</summary>
    private async Task<string> LoadAsync(string name, bool onBusybox, params byte[][] layers)
    {
        JsonNode? busyboxEntry = null;
        var tag = _h.Track(_h.Name(name));
        var members = new List<(string Name, byte[] Data)>();
        var diffIds = new JsonArray();
        var layerNames = new JsonArray();
        var history = new JsonArray();
        JsonObject config;
        if (onBusybox)
        {
            var save = Path.Combine(_h.TempDir(), "busybox.tar");
            await _h.SaveAsync(save, "busybox:latest");
            var saved = ReadTar(save);
            var manifest = (JsonArray)JsonNode.Parse(saved["manifest.json"])!;
            config = (JsonObject)JsonNode.Parse(saved[(string)manifest[0]!["Config"]!])!;
            busyboxEntry = manifest[0]!.DeepClone();
            members.Add(((string)manifest[0]!["Config"]!, saved[(string)manifest[0]!["Config"]!]));
            foreach (var layer in (JsonArray)manifest[0]!["Layers"]!)
            {
                var data = saved[(string)layer!];
                members.Add(((string)layer!, data));
                layerNames.Add((string)layer!);
                diffIds.Add("sha256:" + Convert.ToHexStringLower(SHA256.HashData(data)));
                history.Add(new JsonObject { ["created"] = "2024-01-01T00:00:00Z", ["created_by"] = "busybox" });
            }
        }
        else
        {
            config = new JsonObject { ["architecture"] = "amd64", ["os"] = "linux", ["config"] = new JsonObject { ["Cmd"] = new JsonArray("/x") } };
        }
        for (var i = 0; i < layers.Length; i++)
        {
            members.Add(($"new{i}/layer.tar", layers[i]));
            layerNames.Add($"new{i}/layer.tar");
            diffIds.Add("sha256:" + Convert.ToHexStringLower(SHA256.HashData(layers[i])));
            history.Add(new JsonObject { ["created"] = "2024-01-01T00:00:00Z", ["created_by"] = $"layer {i} of {name}" });
        }
        history.Add(new JsonObject { ["created"] = "2024-01-01T00:00:00Z", ["created_by"] = $"LABEL {name}", ["empty_layer"] = true });
        config["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = diffIds };
        config["history"] = history;
        config["created"] = "2024-01-01T00:00:00Z";
        ((JsonObject)config["config"]!)["Labels"] = new JsonObject { [EngineFixture.TestLabel] = "1" };
        var configBytes = Encoding.UTF8.GetBytes(config.ToJsonString());
        var configName = Convert.ToHexStringLower(SHA256.HashData(configBytes)) + ".json";
        members.Add((configName, configBytes));
        var entries = new JsonArray(new JsonObject
        {
            ["Config"] = configName,
            ["RepoTags"] = new JsonArray(tag),
            ["Layers"] = layerNames,
        });
        if (busyboxEntry is not null) entries.Add(busyboxEntry);
        members.Add(("manifest.json", Encoding.UTF8.GetBytes(entries.ToJsonString())));
        var path = Path.Combine(_h.TempDir(), name + ".tar");
        WriteTar(path, members);
        await engine.DockerAsync(["load", "-i", path]);
        _archive = path;
        return tag;
    }

    private static Dictionary<string, byte[]> ReadTar(string path)
    {
        var result = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        using var reader = new TarReader(System.IO.File.OpenRead(path));
        while (reader.GetNextEntry() is { } entry)
        {
            if (entry.DataStream is null) continue;
            using var ms = new MemoryStream();
            entry.DataStream.CopyTo(ms);
            result[entry.Name] = ms.ToArray();
        }
        return result;
    }

    private static void WriteTar(string path, IEnumerable<(string Name, byte[] Data)> members)
    {
        using var file = System.IO.File.Create(path);
        using var w = new TarWriter(file, TarEntryFormat.Pax);
        foreach (var (name, data) in members)
            w.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(data) });
    }

    private Task<string> RunAsync(string image, params string[] command) =>
        engine.DockerAsync(["run", "--rm", "--network", "none", "--label", $"{EngineFixture.TestLabel}=1", "--entrypoint", "/bin/busybox", image, .. command]);

    private Task<string> SymlinkParentImageAsync() => LoadAsync("symparent", onBusybox: true, Layer(w =>
    {
        Symlink(w, "link", "/");
        File(w, "link/bin/sh", "#!evil\n", (UnixFileMode)0x1ED);
    }));

    [Fact]
    public async Task The_engine_writes_an_entry_under_a_symlink_of_its_layer_through_the_link()
    {
        var image = await SymlinkParentImageAsync();
        (await RunAsync(image, "cat", "/bin/sh")).ShouldBe("#!evil\n");
        (await RunAsync(image, "readlink", "/link")).Trim().ShouldBe("/");
    }

    [Fact]
    public async Task Diff_reports_the_overwrite_through_a_symlinked_parent()
    {
        var image = await SymlinkParentImageAsync();
        var (code, stdout, stderr) = await _h.CliAsync(null, "diff", "busybox:latest", image, "--input", _archive);
        code.ShouldBe(0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines.ShouldContain(l => l.StartsWith("C /bin/sh", StringComparison.Ordinal));
        lines.ShouldContain(l => l.StartsWith("A /link", StringComparison.Ordinal));
        lines.ShouldNotContain(l => l.StartsWith("A /link/", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_squash_of_a_layer_writing_through_a_symlink_equals_the_engines_view()
    {
        var image = await SymlinkParentImageAsync();
        foreach (var onto in new[] { "busybox:latest", "scratch" })
        {
            var squashed = _h.Name($"symparent-squashed-{(onto == "scratch" ? "scratch" : "busybox")}");
            await _h.SquashAsync(image, onto, squashed);
            (await RunAsync(squashed, "cat", "/bin/sh")).ShouldBe("#!evil\n");
            (await RunAsync(squashed, "readlink", "/link")).Trim().ShouldBe("/");
        }
    }

    [Fact]
    public async Task The_engine_cannot_save_such_an_image_and_the_api_path_says_so()
    {
        // Docker 20.10's save re-reads link/bin/sh through the symlink, outside the layer, and fails its checksum:
        // every path that needs a save of the image stops with the engine's error, nothing is tagged.
        var image = await SymlinkParentImageAsync();
        var tag = _h.Name("symparent-api");
        var (code, _, stderr) = await _h.CliAsync(null, "squash", image, "--onto", "busybox:latest", "-t", _h.Track(tag), "--no-fast-path");
        code.ShouldBe(1, stderr);
        stderr.ShouldContain("file integrity checksum failed");
        (await _h.Images.TryInspectImageAsync(tag, CancellationToken.None)).ShouldBeNull();
    }

    [Fact]
    public async Task A_squash_from_an_archive_of_it_loads_as_the_engines_view()
    {
        var image = await SymlinkParentImageAsync();
        var output = Path.Combine(_h.TempDir(), "out.tar");
        var squashed = _h.Track(_h.Name("symparent-archive"));
        var (code, _, stderr) = await _h.CliAsync(null, "squash", image, "--onto", "busybox:latest", "--input", _archive, "--output", output, "-t", squashed);
        code.ShouldBe(0, stderr);
        await engine.DockerAsync(["load", "-i", output]);
        (await RunAsync(squashed, "cat", "/bin/sh")).ShouldBe("#!evil\n");
        (await RunAsync(squashed, "readlink", "/link")).Trim().ShouldBe("/");
    }

    [Fact]
    public async Task A_root_opaque_marker_is_ignored_by_the_engine_and_wastes_nothing_in_layers()
    {
        var image = await LoadAsync("rootopq", onBusybox: true, Layer(w =>
        {
            File(w, ".wh..wh..opq", "");
            File(w, "new", "n\n");
        }));
        (await RunAsync(image, "ls", "/bin/busybox")).Trim().ShouldBe("/bin/busybox");
        var (code, stdout, stderr) = await _h.CliAsync(null, "layers", image, "--json");
        code.ShouldBe(0, stderr);
        var layers = JsonNode.Parse(stdout)!.AsArray();
        layers.Sum(l => (long)l!["wastedBytes"]!).ShouldBe(0);
        var squashed = _h.Name("rootopq-squashed");
        await _h.SquashAsync(image, "busybox:latest", squashed);
        await _h.ShouldBeSquashOfAsync(squashed, image, "busybox:latest");
    }

    [Fact]
    public async Task A_squash_onto_scratch_keeps_the_images_root_entry_on_both_paths()
    {
        // A layer whose first entry is "./" with mode 0700 (as `tar -C rootfs -cf layer.tar .` writes it).
        var rootTime = DateTimeOffset.FromUnixTimeSeconds(1_650_000_000);
        var image = await LoadAsync("root0700", onBusybox: true, Layer(w =>
        {
            w.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "./") { Mode = (UnixFileMode)0x1C0, ModificationTime = rootTime });
            File(w, "new", "n\n");
        }));
        // The engine keeps the entry in the layer it saves, and ignores it in the filesystem it runs.
        var saved = (await _h.TopLayerAsync(image))[0];
        saved.Path.IsRoot.ShouldBeTrue();
        saved.Mode.ShouldBe(0x1C0);
        var engineRoot = (await RunAsync(image, "stat", "-c", "%a %u %g", "/")).Trim();

        foreach (var flag in new[] { "--verbose", "--no-fast-path" })
        {
            var squashed = _h.Name($"root0700-squashed{flag.Replace("-", "", StringComparison.Ordinal)}");
            await _h.SquashAsync(image, "scratch", squashed, flag);
            await _h.ShouldBeSquashOfAsync(squashed, image, null);
            var root = (await _h.TopLayerAsync(squashed))[0];
            root.Path.IsRoot.ShouldBeTrue(flag);
            root.IsDirectory.ShouldBeTrue(flag);
            root.Mode.ShouldBe(saved.Mode, flag);
            root.Uid.ShouldBe(saved.Uid, flag);
            root.Gid.ShouldBe(saved.Gid, flag);
            root.ModificationTime.ShouldBe(rootTime, flag);
            (await RunAsync(squashed, "stat", "-c", "%a %u %g", "/")).Trim().ShouldBe(engineRoot, flag);
        }
    }

    [Fact]
    public async Task Images_without_layers_work_for_layers_diff_and_squash_through_the_engine()
    {
        var empty = await LoadAsync("empty", onBusybox: false);
        (await _h.DiffIdsAsync(empty)).ShouldBeEmpty();

        var (code, stdout, stderr) = await _h.CliAsync(null, "layers", empty);
        code.ShouldBe(0, stderr);
        stdout.ShouldContain("in 0 layers");

        (code, stdout, stderr) = await _h.CliAsync(null, "diff", empty, "busybox:latest");
        code.ShouldBe(0, stderr);
        stdout.Split('\n').ShouldContain("A /bin/busybox");
        (code, stdout, stderr) = await _h.CliAsync(null, "diff", "busybox:latest", empty);
        code.ShouldBe(0, stderr);
        stdout.Split('\n').ShouldContain("D /bin");

        // Onto an image without layers: the result is one layer, with the final image's filesystem.
        var onto = _h.Name("onto-empty");
        await _h.SquashAsync("busybox:latest", empty, onto);
        await _h.ShouldBeSquashOfAsync(onto, "busybox:latest", empty);
        (await RunAsync(onto, "echo", "ok")).Trim().ShouldBe("ok");

        // Squashing one: an empty filesystem over busybox whites everything out.
        foreach (var flag in new[] { "--no-fast-path", "--verbose" })
        {
            var squashed = _h.Name($"empty-squashed{flag.Replace("-", "", StringComparison.Ordinal)}");
            await _h.SquashAsync(empty, "busybox:latest", squashed, flag);
            using var index = await _h.IndexAsync(squashed);
            index.Count.ShouldBe(0);
        }
    }

    [Fact]
    public async Task Output_equal_to_input_is_refused_in_every_spelling()
    {
        var dir = _h.TempDir();
        var input = Path.Combine(dir, "in.tar");
        await _h.SaveAsync(input, "busybox:latest");
        var before = SHA256.HashData(await System.IO.File.ReadAllBytesAsync(input));
        var symlink = Path.Combine(dir, "via-symlink.tar");
        System.IO.File.CreateSymbolicLink(symlink, input);
        var hardLink = Path.Combine(dir, "hard.tar");
        (await EngineFixture.RunAsync("ln", [input, hardLink], dir, CancellationToken.None)).ExitCode.ShouldBe(0);
        Directory.CreateDirectory(Path.Combine(dir, "sub"));
        foreach (var output in new[] { input, symlink, hardLink, Path.Combine(dir, "sub", "..", "in.tar"), Path.Combine(dir, ".", "in.tar") })
        {
            var (code, _, stderr) = await _h.CliAsync(null, "squash", "busybox:latest", "--onto", "scratch", "--input", input, "--output", output);
            code.ShouldBe(1, stderr);
            stderr.ShouldContain("is the input");
        }
        SHA256.HashData(await System.IO.File.ReadAllBytesAsync(input)).ShouldBe(before);
    }

    [Theory]
    [InlineData("layers", "")]
    [InlineData("layers", " ")]
    [InlineData("diff", "")]
    public async Task An_empty_image_argument_is_a_usage_error(string verb, string value)
    {
        var (code, _, stderr) = await _h.CliAsync(null, verb == "diff" ? [verb, value, "busybox:latest"] : [verb, value]);
        code.ShouldBe(2, stderr);
        stderr.ShouldContain("must not be empty");
    }
}
