using System.Text.Json.Nodes;
using LayerTool.Image.Formats;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Diff;

namespace LayerTool.IntegrationTests.Rebase;

/// <summary>
/// <c>layertool rebase</c> against the real engine: an app of three layers built on base v1, moved onto the patched
/// v2. Its own layers keep their digests; without conflicts its filesystem equals the same Dockerfile rebuilt on v2;
/// each hidden patch is reported with its path and kind; --strict tags nothing; a wrong --from is refused; the same
/// through archives and OCI layouts.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class RebaseEngineTests(EngineFixture engine) : IAsyncLifetime
{
    private readonly RebaseHarness _h = new(engine);

    private const string CleanApp = """
        FROM {BASE}
        RUN echo app > /app.txt
        COPY config /opt/app/config
        RUN mkdir -p /srv && echo data > /srv/data && cat /lib/libssl.so.3 > /srv/ssl-seen-at-build
        """;

    private const string ConflictApp = """
        FROM {BASE}
        RUN echo mine > /lib/libssl.so.3
        RUN rm -rf /usr/share/doc
        RUN rm -rf /etc/ssl/certs && mkdir /etc/ssl/certs && echo mine > /etc/ssl/certs/mine.pem
        """;

    private static readonly Dictionary<string, string> Context = new() { ["config"] = "key=value\n" };

    public Task InitializeAsync() => _h.CreateBasesAsync();

    public async Task DisposeAsync()
    {
        // This process's export containers only (named for their owner): the kill loops run beside these tests.
        var leaked = await _h.DockerAsync("ps", "-aq", "--filter", $"label={LayerTool.Docker.Images.DockerImageEngine.ExportLabel}",
            "--filter", $"name=^/layertool-export-{Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)}\\.");
        await _h.DisposeAsync();
        leaked.Trim().ShouldBe("", "export containers must always be removed");
    }

    [Fact]
    public async Task Without_conflicts_the_result_keeps_the_own_layers_and_equals_a_rebuild_on_the_new_base()
    {
        var app = await _h.BuildAsync("clean", _h.V1, CleanApp, Context);
        var rebuilt = await _h.BuildAsync("clean-rebuilt", _h.V2, CleanApp, Context);
        var tag = _h.Track(_h.Name("clean-rebased"));
        var (code, stdout, stderr) = await _h.CliAsync("rebase", app, "--onto", _h.V2, "--from", _h.V1, "-t", tag, "--cache-dir", _h.CacheDir, "--json");
        code.ShouldBe(0, stderr);

        var appIds = await _h.DiffIdsAsync(app);
        var v1Ids = await _h.DiffIdsAsync(_h.V1);
        var v2Ids = await _h.DiffIdsAsync(_h.V2);
        var rebasedIds = await _h.DiffIdsAsync(tag);
        rebasedIds.ShouldBe([.. v2Ids, .. appIds.Skip(v1Ids.Count)]);
        appIds.Count.ShouldBe(v1Ids.Count + 3);

        var json = JsonNode.Parse(stdout)!;
        json["imageId"]!.GetValue<string>().ShouldBe((await _h.Images.TryInspectImageAsync(tag, CancellationToken.None))!.Id);
        json["files"]!.AsArray().ShouldBeEmpty();
        json["config"]!.AsArray().Select(c => c!["key"]!.GetValue<string>()).ShouldBe(["Env.PATH"]);
        json["ownLayers"]!.GetValue<int>().ShouldBe(3);

        // Entry by entry, as `docker export` shows them: the rebuilt app on v2 and the rebased one. The file the
        // build copied from the old library differs, as it must (the rebase does not rerun anything).
        using var expected = await _h.ExportIndexAsync(rebuilt);
        using var actual = await _h.ExportIndexAsync(tag);
        var differences = LayerVerifier.Compare(expected, actual);
        differences.Select(d => d.Path.ToString()).ShouldBe(["srv/ssl-seen-at-build"], string.Join("; ", differences));

        // History: the new base's entry, then the app's own entries, unchanged.
        var appHistory = (await _h.DockerAsync("history", "--no-trunc", "--format", "{{.CreatedBy}}", app)).Split('\n');
        var history = (await _h.DockerAsync("history", "--no-trunc", "--format", "{{.CreatedBy}}", tag)).Split('\n');
        history.Length.ShouldBe(appHistory.Length);
        history[..^2].ShouldBe(appHistory[..^2]);
    }

    [Fact]
    public async Task Each_hidden_patch_is_reported_with_its_path_and_kind_and_strict_tags_nothing()
    {
        var app = await _h.BuildAsync("conflict", _h.V1, ConflictApp);
        var strictTag = _h.Track(_h.Name("conflict-strict"));
        var (strictCode, strictOut, strictErr) = await _h.CliAsync("rebase", app, "--onto", _h.V2, "--from", _h.V1, "-t", strictTag, "--strict", "--json",
            "--cache-dir", _h.CacheDir);
        strictCode.ShouldBe(2, strictErr);
        strictErr.ShouldContain("--strict: conflicts found");
        (await _h.Images.TryInspectImageAsync(strictTag, CancellationToken.None)).ShouldBeNull();

        var json = JsonNode.Parse(strictOut)!;
        json["imageId"].ShouldBeNull();
        var files = json["files"]!.AsArray().Select(f => (f!["path"]!.GetValue<string>(), f["kind"]!.GetValue<string>())).ToList();
        files.ShouldContain(("/lib/libssl.so.3", "overwritten"));
        files.ShouldContain(("/usr/share/doc/readme", "deleted"));
        files.ShouldContain(("/etc/ssl/certs/ca.pem", "opaque"));
        files.ShouldNotContain(f => f.Item1 == "/lib/libnew.so" || f.Item1 == "/lib/libold.so");
        var config = json["config"]!.AsArray().Single()!;
        config["key"]!.GetValue<string>().ShouldBe("Env.PATH");
        config["kind"]!.GetValue<string>().ShouldBe("config");
        json["conflicts"]!.GetValue<int>().ShouldBe(4);

        // Without --strict the image is made, and --take-base-config takes the new PATH.
        var tag = _h.Track(_h.Name("conflict-rebased"));
        var (code, _, stderr) = await _h.CliAsync("rebase", app, "--onto", _h.V2, "--from", _h.V1, "-t", tag, "--take-base-config", "Env.PATH",
            "--cache-dir", _h.CacheDir);
        code.ShouldBe(0, stderr);
        stderr.ShouldContain("overwritten /lib/libssl.so.3");
        stderr.ShouldContain("applied     Env.PATH");
        var env = await _h.DockerAsync("inspect", "--format", "{{json .Config.Env}}", tag);
        env.ShouldContain("PATH=/usr/bin:/bin");
        var ssl = await _h.DockerAsync("run", "--rm", "--network", "none", "--label", $"{EngineFixture.TestLabel}=1", tag, "cat", "/lib/libssl.so.3", "/lib/libnew.so");
        ssl.ShouldBe("mine\nnew");
    }

    [Fact]
    public async Task A_wrong_from_is_refused_and_the_old_base_is_found_without_it()
    {
        var app = await _h.BuildAsync("found", _h.V1, CleanApp, Context);
        var tag = _h.Track(_h.Name("found-rebased"));
        var (code, _, stderr) = await _h.CliAsync("rebase", app, "--onto", _h.V2, "--from", _h.V2, "-t", tag, "--cache-dir", _h.CacheDir);
        code.ShouldBe(1);
        stderr.ShouldContain("is not a base of");
        (await _h.Images.TryInspectImageAsync(tag, CancellationToken.None)).ShouldBeNull();

        // No --from and no base label: the longest tagged local prefix is v1 (not one of the build's intermediate images).
        (code, _, stderr) = await _h.CliAsync("rebase", app, "--onto", _h.V2, "-t", tag, "--cache-dir", _h.CacheDir);
        code.ShouldBe(0, stderr);
        stderr.ShouldContain($"from {_h.V1} (prefix)");
        var v2Ids = await _h.DiffIdsAsync(_h.V2);
        (await _h.DiffIdsAsync(tag)).Take(v2Ids.Count).ShouldBe(v2Ids);

        // The rebased image names its base in the OCI labels, so rebasing it back onto v1 finds v2 by label.
        var back = _h.Track(_h.Name("found-back"));
        (code, _, stderr) = await _h.CliAsync("rebase", tag, "--onto", _h.V1, "-t", back, "--cache-dir", _h.CacheDir);
        code.ShouldBe(0, stderr);
        stderr.ShouldContain($"from {_h.V2} (label)");
        (await _h.DiffIdsAsync(back)).ShouldBe(await _h.DiffIdsAsync(app));
    }

    [Theory]
    [InlineData("classic")]
    [InlineData("buildkit")]
    public async Task An_image_built_by_layertool_names_its_base_and_rebases_without_from(string builder)
    {
        var dir = _h.TempDir();
        await File.WriteAllTextAsync(Path.Combine(dir, "Dockerfile"), $"FROM {_h.V1} AS base\nRUN echo one > /one\nFROM base\nRUN echo two > /two\n");
        var app = _h.Track(_h.Name("built-" + builder));
        var (code, _, stderr) = await _h.CliAsync("build", "--builder", builder, "--network", "none", "-q", "--label", $"{EngineFixture.TestLabel}=1", "-t", app, dir);
        code.ShouldBe(0, stderr);
        var labels = await _h.DockerAsync("inspect", "--format", "{{json .Config.Labels}}", app);
        var parsed = JsonNode.Parse(labels)!;
        parsed[LayerTool.Image.SquashConfig.BaseNameLabel]!.GetValue<string>().ShouldBe(_h.V1);
        // An imported base has no repo digest: its image ID is recorded.
        parsed[LayerTool.Image.SquashConfig.BaseDigestLabel]!.GetValue<string>().ShouldBe((await _h.Images.TryInspectImageAsync(_h.V1, CancellationToken.None))!.Id);

        var tag = _h.Track(_h.Name("built-" + builder + "-rebased"));
        (code, _, stderr) = await _h.CliAsync("rebase", app, "--onto", _h.V2, "-t", tag, "--cache-dir", _h.CacheDir);
        code.ShouldBe(0, stderr);
        stderr.ShouldContain($"from {_h.V1} (label)");
        var v1Ids = await _h.DiffIdsAsync(_h.V1);
        (await _h.DiffIdsAsync(tag)).ShouldBe([.. await _h.DiffIdsAsync(_h.V2), .. (await _h.DiffIdsAsync(app)).Skip(v1Ids.Count)]);

        // --no-base-labels records nothing.
        var plain = _h.Track(_h.Name("built-" + builder + "-plain"));
        (code, _, stderr) = await _h.CliAsync("build", "--builder", builder, "--network", "none", "-q", "--no-base-labels", "--label", $"{EngineFixture.TestLabel}=1", "-t", plain, dir);
        code.ShouldBe(0, stderr);
        (await _h.DockerAsync("inspect", "--format", "{{json .Config.Labels}}", plain)).ShouldNotContain("org.opencontainers.image.base.");
    }

    [Fact]
    public async Task The_overlay2_store_gives_the_layers_byte_for_byte_as_a_save_and_the_rebase_reads_no_save()
    {
        var app = await _h.BuildAsync("store", _h.V1, CleanApp, Context);
        var inspected = (await _h.Images.TryInspectImageAsync(app, CancellationToken.None))!;
        var local = LayerTool.Docker.Overlay2.TarSplitLayer.TryOpenImage(inspected, out var reason);
        var tag = _h.Track(_h.Name("store-rebased"));
        var (code, stdout, stderr) = await _h.CliAsync("rebase", app, "--onto", _h.V2, "--from", _h.V1, "-t", tag, "--cache-dir", _h.CacheDir, "--json");
        code.ShouldBe(0, stderr);
        var readWith = JsonNode.Parse(stdout)!["readWith"]!.GetValue<string>();
        if (local is null)
        {
            // Not root, or a remote engine: the save, with the reason.
            readWith.ShouldBe($"docker save ({reason})");
            return;
        }

        readWith.ShouldBe("overlay2 layer store");
        local.Config.Digest.ToString().ShouldBe(inspected.Id);
        var dir = _h.TempDir();
        var archive = Path.Combine(dir, "app.tar");
        await _h.SaveAsync(archive, app);
        using var saved = ImageArchive.Open(archive);
        var savedLayers = saved.GetImage().Layers;
        for (var i = 0; i < savedLayers.Count; i++)
        {
            await using var expected = savedLayers[i].Open(CancellationToken.None);
            await using var actual = local.Layers[i].Open(CancellationToken.None);
            using var a = new MemoryStream();
            using var b = new MemoryStream();
            await expected.CopyToAsync(a);
            await actual.CopyToAsync(b); // the diff ID is checked at the end
            b.ToArray().SequenceEqual(a.ToArray()).ShouldBeTrue($"layer {i + 1}");
        }

        (code, stdout, stderr) = await _h.CliAsync("rebase", app, "--onto", _h.V2, "--from", _h.V1, "-t", _h.Track(_h.Name("store-saved")), "--cache-dir",
            _h.CacheDir, "--json", "--no-fast-path");
        code.ShouldBe(0, stderr);
        JsonNode.Parse(stdout)!["readWith"]!.GetValue<string>().ShouldBe("docker save (--no-fast-path)");
        JsonNode.Parse(stdout)!["imageId"]!.GetValue<string>().ShouldBe((await _h.Images.TryInspectImageAsync(tag, CancellationToken.None))!.Id);
    }

    [Fact]
    public async Task Many_images_at_once_print_one_table()
    {
        var one = await _h.BuildAsync("many-1", _h.V1, CleanApp, Context);
        var two = await _h.BuildAsync("many-2", _h.V1, ConflictApp);
        var before = await _h.DiffIdsAsync(one);
        // The tags move to the results: the originals are removed by ID at the end.
        _h.Track((await _h.Images.TryInspectImageAsync(one, CancellationToken.None))!.Id);
        _h.Track((await _h.Images.TryInspectImageAsync(two, CancellationToken.None))!.Id);
        var (code, stdout, stderr) = await _h.CliAsync("rebase", "--onto", _h.V2, "--from", _h.V1, one, two, "--cache-dir", _h.CacheDir);
        code.ShouldBe(0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines[0].ShouldStartWith("IMAGE");
        lines.Length.ShouldBe(3);
        lines[1].ShouldStartWith(one);
        lines[1].TrimEnd().ShouldEndWith(" 1"); // Env.PATH
        lines[2].TrimEnd().ShouldEndWith(" 4");
        var v2Ids = await _h.DiffIdsAsync(_h.V2);
        (await _h.DiffIdsAsync(one)).ShouldBe([.. v2Ids, .. before.Skip(1)]);
    }

    [Fact]
    public async Task The_same_through_archives_and_oci_layouts()
    {
        var app = await _h.BuildAsync("archive", _h.V1, ConflictApp);
        var dir = _h.TempDir();
        var all = Path.Combine(dir, "all.tar");
        await _h.SaveAsync(all, app, _h.V1, _h.V2);

        // docker-archive in, docker-archive out, loaded and checked.
        var output = Path.Combine(dir, "rebased.tar");
        var tag = _h.Track(_h.Name("archive-rebased"));
        var (code, stdout, stderr) = await _h.CliAsync("rebase", app, "--input", all, "--onto", _h.V2, "--from", _h.V1, "--output", output, "-t", tag, "--json");
        code.ShouldBe(0, stderr);
        var report = JsonNode.Parse(stdout)!;
        report["files"]!.AsArray().Select(f => f!["kind"]!.GetValue<string>()).Order().ShouldBe(["deleted", "opaque", "overwritten"]);
        await _h.DockerAsync("load", "-i", output);
        var appIds = await _h.DiffIdsAsync(app);
        var v2Ids = await _h.DiffIdsAsync(_h.V2);
        (await _h.DiffIdsAsync(tag)).ShouldBe([.. v2Ids, .. appIds.Skip(1)]);

        // An OCI layout of the app alone in, the bases from the save, an OCI layout out.
        var appLayout = Path.Combine(dir, "app-oci");
        using (var saved = ImageArchive.Open(all))
        {
            await ImageArchiveWriter.WriteAsync(appLayout, saved.GetImage(app), new ImageWriteOptions { Format = ImageArchiveFormat.OciLayout, AsDirectory = true, Tags = [LayerTool.Image.ImageReference.Parse(app)] },
                CancellationToken.None);
        }

        var ociOut = Path.Combine(dir, "rebased-oci");
        (code, _, stderr) = await _h.CliAsync("rebase", "--input", appLayout, "--base-input", all, "--onto", _h.V2, "--from", _h.V1, "--output", ociOut,
            "--format", "oci", "-t", "rebased:oci", "--strict", app);
        code.ShouldBe(2, stderr);
        stderr.ShouldContain("--strict: conflicts found");
        Directory.Exists(ociOut).ShouldBeFalse();
        (code, _, stderr) = await _h.CliAsync("rebase", "--input", appLayout, "--base-input", all, "--onto", _h.V2, "--from", _h.V1, "--output", ociOut,
            "--format", "oci", "-t", "rebased:oci", app);
        code.ShouldBe(0, stderr);
        using var layout = ImageArchive.Open(ociOut);
        var rebased = layout.GetImage("rebased:oci");
        rebased.Config.DiffIds.Select(d => d.ToString()).ShouldBe([.. v2Ids, .. appIds.Skip(1)]);
        rebased.Config.Config.Labels![LayerTool.Image.SquashConfig.BaseNameLabel].ShouldBe(_h.V2);
        rebased.Config.History.Count(h => !h.EmptyLayer).ShouldBe(rebased.Config.DiffIds.Count);
    }
}
