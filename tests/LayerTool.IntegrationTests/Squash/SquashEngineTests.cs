using System.Text;
using System.Text.Json;
using LayerTool.Image.Layers;

namespace LayerTool.IntegrationTests.Squash;

/// <summary>
/// <c>layertool squash</c> against the real engine: images built with <c>docker build</c> on busybox, squashed,
/// and compared with the original entry by entry (path, type, mode, owner, size, content hash, link target,
/// device numbers, xattrs, hard-link groups).
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class SquashEngineTests(EngineFixture engine) : IAsyncLifetime
{
    private readonly SquashHarness _h = new(engine);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        (await _h.LeakedExportContainersAsync()).ShouldBeEmpty("export containers must always be removed");
        await _h.DisposeAsync();
    }

    private const string Base = "busybox:latest";

    [Fact]
    public async Task Whiteouts_opaque_directories_recreated_directories_and_type_changes()
    {
        var image = await _h.BuildAsync("whiteouts", $"""
            FROM {Base}
            RUN mkdir -p /opq/sub /gone/sub /recreate/old /t1 /t4 && echo a > /opq/a && echo b > /opq/sub/b && echo 2 > /gone/sub/f \
             && echo 3 > /recreate/old/f && echo dir > /t1/inner && echo file > /t2 && ln -s /bin /t3 && echo x > /t4/x
            RUN rm -rf /opq && mkdir /opq && echo new > /opq/c && rm -rf /gone && rm -rf /recreate && mkdir -p /recreate/new && echo 4 > /recreate/new/g \
             && rm -rf /t1 && echo nowfile > /t1 && rm /t2 && ln -s /etc /t2 && rm /t3 && mkdir /t3 && echo y > /t3/y && rm -rf /t4 && ln -s /opq /t4 \
             && rm /bin/vi /bin/ls
            """);
        var squashed = _h.Name("whiteouts-sq");
        await _h.SquashAsync(image, Base, squashed);
        await _h.ShouldBeSquashOfAsync(squashed, image, Base);
        var names = (await _h.TopLayerAsync(squashed)).Select(e => e.Name).ToList();
        names.ShouldContain("bin/.wh.vi");
        names.ShouldContain("bin/.wh.ls");
        names.ShouldNotContain(n => n.StartsWith("gone", StringComparison.Ordinal)); // never in the base: nothing to white out
    }

    [Fact]
    public async Task Hard_links_whose_target_was_deleted_overwritten_or_lives_in_the_base()
    {
        var image = await _h.BuildAsync("links", $"""
            FROM {Base}
            RUN mkdir /h && echo target1 > /h/t1 && ln /h/t1 /h/l1 && echo target2 > /h/t2 && ln /h/t2 /h/l2 \
             && ln /bin/busybox /aa-busybox && ln /bin/busybox /zz-busybox
            RUN rm /h/t1 && echo overwritten > /h/t2.new && mv /h/t2.new /h/t2
            RUN echo more >> /h/l1
            """);
        var squashed = _h.Name("links-sq");
        await _h.SquashAsync(image, Base, squashed);
        await _h.ShouldBeSquashOfAsync(squashed, image, Base);
    }

    [Fact]
    public async Task Mode_and_owner_changes_same_size_same_mtime_rewrites_and_rewrites_back_to_base_bytes()
    {
        var baseImage = await _h.BuildAsync("meta-base", $"""
            FROM {Base}
            RUN mkdir -p /m/sticky && echo original > /m/back && echo data > /m/modeonly && echo data > /m/owneronly \
             && echo aaaa > /m/same && touch -d @1000000000 /m/same
            """);
        var image = await _h.BuildAsync("meta", $"""
            FROM {baseImage}
            RUN echo changed > /m/back && chmod 0600 /m/modeonly && chown 123:456 /m/owneronly
            RUN echo original > /m/back && echo bbbb > /m/same && touch -d @1000000000 /m/same && chmod 1777 /m/sticky \
             && echo x > /m/suid && chmod 4755 /m/suid
            """);
        var squashed = _h.Name("meta-sq");
        await _h.SquashAsync(image, baseImage, squashed);
        await _h.ShouldBeSquashOfAsync(squashed, image, baseImage);
        var layer = (await _h.TopLayerAsync(squashed)).ToDictionary(e => e.Name);
        layer.ShouldContainKey("m/same"); // same size, same mtime, other bytes: caught by the content hash
        layer.ShouldNotContainKey("m/back"); // back to the base's bytes: not a change
        layer["m/modeonly"].Mode.ShouldBe(0x180); // 0600
        layer["m/owneronly"].Uid.ShouldBe(123);
        layer["m/suid"].Mode.ShouldBe(0x9ED); // 04755
        layer["m/sticky"].Mode.ShouldBe(0x3FF); // 01777
    }

    [Fact]
    public async Task Odd_names_long_paths_devices_and_fifos()
    {
        var a = new string('a', 100);
        var b = new string('b', 100);
        var c = new string('c', 80);
        var image = await _h.BuildAsync("names", $"""
            FROM {Base}
            RUN mkdir -p /n/x.wh.y && echo a > /n/foo.wh.bar && echo b > /n/x.wh.y/f && echo c > /n/wh.plain
            RUN cd /n && printf nonutf > "$(printf 'caf\351')" && mkdir "$(printf 'd\377\376')" && echo z > "$(printf 'd\377\376')/in"
            RUN mkdir -p /n/{a}/{b} && echo long > /n/{a}/{b}/{c}
            RUN mkdir /devs && mknod /devs/null c 1 3 && mknod /devs/loop b 7 0 && mkfifo /devs/fifo && chmod 4755 /n/foo.wh.bar
            """);
        var squashed = _h.Name("names-sq");
        await _h.SquashAsync(image, Base, squashed);
        await _h.ShouldBeSquashOfAsync(squashed, image, Base);
        var layer = await _h.TopLayerAsync(squashed);
        layer.ShouldContain(e => e.Name == "n/foo.wh.bar" && e.Type == LayerEntryType.RegularFile);
        layer.ShouldContain(e => e.Name == "n/x.wh.y/f");
        var raw = layer.Select(e => e.Path.Bytes.ToArray()).ToList();
        raw.ShouldContain(p => p.SequenceEqual(new byte[] { (byte)'n', (byte)'/', (byte)'c', (byte)'a', (byte)'f', 0xE9 }), "the non-UTF-8 name, byte for byte");
        raw.ShouldContain(p => p.Length > 250);
        layer.ShouldContain(e => e.Name == "devs/null" && e.Type == LayerEntryType.CharacterDevice && e.DevMajor == 1 && e.DevMinor == 3);
        layer.ShouldContain(e => e.Name == "devs/loop" && e.Type == LayerEntryType.BlockDevice && e.DevMajor == 7);
        layer.ShouldContain(e => e.Name == "devs/fifo" && e.Type == LayerEntryType.Fifo);
    }

    [Fact]
    public async Task Thirty_two_layers_become_one()
    {
        var dockerfile = new StringBuilder($"FROM {Base}\nRUN mkdir /many && echo 0 > /many/f0\n");
        for (var i = 1; i < 32; i++)
            dockerfile.Append($"RUN echo {i} > /many/f{i} && rm /many/f{i - 1} && echo {i} >> /many/log\n");
        var image = await _h.BuildAsync("many", dockerfile.ToString());
        (await _h.DiffIdsAsync(image)).Count.ShouldBeGreaterThan(32);
        var squashed = _h.Name("many-sq");
        await _h.SquashAsync(image, Base, squashed);
        await _h.ShouldBeSquashOfAsync(squashed, image, Base);
    }

    [Fact]
    public async Task Onto_a_non_ancestor_warns_and_is_exact_and_onto_scratch_is_one_layer()
    {
        var other = await _h.BuildAsync("other-base", $"""
            FROM {Base}
            RUN mkdir /other && echo other > /other/file && rm /bin/sed
            """);
        var image = await _h.BuildAsync("mine", $"""
            FROM {Base}
            RUN mkdir /mine && echo mine > /mine/file && rm /bin/tr && echo changed > /bin/tr
            """);
        var squashed = _h.Name("mine-on-other");
        _h.Track(squashed);
        var (code, _, stderr) = await _h.CliAsync(null, "squash", image, "--onto", other, "-t", squashed, "--cache-dir", _h.CacheDir);
        code.ShouldBe(0, stderr);
        stderr.ShouldContain("not an ancestor");
        await _h.ShouldBeSquashOfAsync(squashed, image, other);

        var flat = _h.Name("mine-flat");
        await _h.SquashAsync(image, "scratch", flat);
        await _h.ShouldBeSquashOfAsync(flat, image, null);
    }

    [Fact]
    public async Task An_image_that_only_changed_metadata_adds_no_layer_and_keeps_its_config()
    {
        var image = await _h.BuildAsync("metaonly", $"""
            FROM {Base}
            LABEL purpose=test-metadata-only
            ENV GREETING=hello
            """);
        var squashed = _h.Name("metaonly-sq");
        await _h.SquashAsync(image, Base, squashed, "-m", "only metadata");
        await _h.ShouldBeSquashOfAsync(squashed, image, Base, expectLayer: false);
        var labels = await engine.DockerAsync(["image", "inspect", "--format", "{{json .Config.Labels}} {{json .Config.Env}}", squashed]);
        labels.ShouldContain("test-metadata-only");
        labels.ShouldContain("org.opencontainers.image.base.name");
        labels.ShouldContain("GREETING=hello");
        var history = await engine.DockerAsync(["history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}", squashed]);
        history.ShouldContain("layertool squash --onto busybox:latest|only metadata");
        history.ShouldContain("GREETING=hello");
    }

    [Fact]
    public async Task The_same_squash_twice_with_reproducible_gives_the_same_ids()
    {
        var image = await _h.BuildAsync("repro", $"""
            FROM {Base}
            RUN mkdir /r && echo one > /r/a && echo two > /r/b && rm /bin/tee
            """);
        var env = new Dictionary<string, string> { ["SOURCE_DATE_EPOCH"] = "1700000000" };
        var results = new List<JsonElement>();
        foreach (var cache in new[] { _h.TempDir(), _h.TempDir() })
        {
            var tag = _h.Track(_h.Name("repro-sq"));
            var (code, stdout, stderr) = await _h.CliAsync(env, "squash", image, "--onto", Base, "-t", tag, "--reproducible", "--json", "--cache-dir", cache);
            code.ShouldBe(0, stderr);
            results.Add(JsonDocument.Parse(stdout).RootElement.Clone());
            await _h.Images.RemoveImageAsync(tag, CancellationToken.None);
        }
        results[0].GetProperty("imageId").GetString().ShouldBe(results[1].GetProperty("imageId").GetString());
        results[0].GetProperty("layerDiffId").GetString().ShouldBe(results[1].GetProperty("layerDiffId").GetString());
        results[0].GetProperty("layersAfter").GetInt32().ShouldBe((await _h.DiffIdsAsync(Base)).Count + 1);
    }

    [Fact]
    public async Task Unknown_images_are_clear_errors_and_tag_nothing()
    {
        var tag = _h.Track(_h.Name("never"));
        var (code, _, stderr) = await _h.CliAsync(null, "squash", "lt-test/no-such-image:404", "--onto", Base, "-t", tag, "--cache-dir", _h.CacheDir);
        code.ShouldBe(1);
        stderr.ShouldContain("no such image: lt-test/no-such-image:404");
        (code, _, stderr) = await _h.CliAsync(null, "squash", Base, "--onto", "lt-test/no-such-base:404", "-t", tag, "--cache-dir", _h.CacheDir);
        code.ShouldBe(1);
        stderr.ShouldContain("no such image: lt-test/no-such-base:404");
        (await _h.Images.TryInspectImageAsync(tag, CancellationToken.None)).ShouldBeNull();
    }

    [Fact]
    public async Task Diff_and_layers_report_what_changed_and_what_is_wasted()
    {
        var image = await _h.BuildAsync("report", $"""
            FROM {Base}
            RUN mkdir /w && head -c 10000 /dev/zero > /w/big && echo keep > /w/keep
            RUN rm /w/big && rm /bin/wc
            """);
        var (code, stdout, stderr) = await _h.CliAsync(null, "diff", Base, image);
        code.ShouldBe(0, stderr);
        stdout.ShouldContain("A /w/keep");
        stdout.ShouldContain("D /bin/wc");
        stdout.ShouldNotContain("/w/big");
        (code, stdout, stderr) = await _h.CliAsync(null, "layers", image, "--json");
        code.ShouldBe(0, stderr);
        var layers = JsonDocument.Parse(stdout).RootElement;
        layers.GetArrayLength().ShouldBe((await _h.DiffIdsAsync(image)).Count);
        layers[layers.GetArrayLength() - 2].GetProperty("wastedBytes").GetInt64().ShouldBe(10000);
        layers[layers.GetArrayLength() - 2].GetProperty("createdBy").GetString().ShouldNotBeNull().ShouldContain("head -c 10000");
    }
}
