using System.Text.Json;
using LayerTool.IntegrationTests.Squash;

namespace LayerTool.IntegrationTests.FastPath;

/// <summary>
/// The overlay2 fast path against the export (API) path on the real engine: same new layer (diffID) for
/// tricky images, the squashed image's filesystem equal to the original's, and the fallback when the base
/// is not an ancestor or with <c>--no-fast-path</c>.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class FastPathTests(EngineFixture engine) : IAsyncLifetime
{
    private readonly SquashHarness _h = new(engine);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private const string Base = "busybox:latest";

    public static TheoryData<string, string> Cases() => new()
    {
        { "tricky", """
            RUN mkdir -p /d/sub /opq/s && echo a > /d/sub/f && echo hi > /d/x && ln /d/x /d/y && mkfifo /d/fifo && chmod 4755 /d/x && mkdir /t && chmod 1777 /t && echo o > /opq/s/o
            RUN rm -rf /d/sub && mkdir /d/sub && echo b > /d/sub/g && rm /bin/ls && echo z > '/d/foo.wh.bar' && mkdir /d/x.wh.y && touch "$(printf '/d/\377name')" && rm -rf /opq && mkdir /opq && echo n > /opq/n
            RUN rm -rf /usr && mkdir /usr && echo new > /usr/passwd && rm -f /etc/group && ln /bin/busybox /bin/bb2
            RUN echo hi > /d/x2 && rm /d/y && ln -s /d/x /d/sl && rm /d/fifo && mkdir /d/fifo && rm -rf /t && ln -s /d /t
            """ },
        { "rewrites", """
            RUN mkdir /r && printf aaaa > /r/same && touch -d '2020-01-01 00:00:00' /r/same && cp /bin/busybox /r/copy
            RUN printf bbbb > /r/same && touch -d '2020-01-01 00:00:00' /r/same && cp /etc/passwd /tmp/p && echo x >> /etc/passwd
            RUN cp /tmp/p /etc/passwd && rm /tmp/p && chmod 600 /etc/group && chown 1:1 /etc/shadow || true
            """ },
        { "links", """
            RUN mkdir /h && echo t1 > /h/t1 && ln /h/t1 /h/l1 && echo t2 > /h/t2 && ln /h/t2 /h/l2 && ln /bin/busybox /aa-bb && ln /bin/busybox /zz-bb
            RUN rm /h/t1 && echo over > /h/t2.new && mv /h/t2.new /h/t2
            RUN echo more >> /h/l1 && chmod 700 /aa-bb
            """ },
        { "many-layers", string.Join('\n', Enumerable.Range(0, 32).Select(i => $"RUN mkdir -p /m/{i % 5} && echo {i} > /m/{i % 5}/f{i} && rm -f /m/{(i + 2) % 5}/f{i - 3}")) },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Fast_path_and_export_path_give_the_same_layer(string name, string steps)
    {
        var image = await _h.BuildAsync("fp-" + name, $"FROM {Base}\n{steps}\n");
        var tag = _h.Track(_h.Name("fp-" + name + "-sq"));
        var fast = await SquashJsonAsync(image, Base, "-t", tag);
        fast.GetProperty("method").GetString()!.ShouldStartWith("fast path");
        var output = Path.Combine(_h.TempDir(), "api.tar");
        var api = await SquashJsonAsync(image, Base, "--no-fast-path", "--no-load", "--output", output);
        api.GetProperty("method").GetString()!.ShouldContain("--no-fast-path");
        fast.GetProperty("layerDiffId").GetString().ShouldBe(api.GetProperty("layerDiffId").GetString());
        await _h.ShouldBeSquashOfAsync(tag, image, Base);
    }

    [Fact]
    public async Task A_base_that_is_not_an_ancestor_falls_back_to_the_api()
    {
        var other = await _h.BuildAsync("fp-other", $"FROM {Base}\nRUN echo other > /other\n");
        var image = await _h.BuildAsync("fp-img", $"FROM {Base}\nRUN echo img > /img\n");
        var tag = _h.Track(_h.Name("fp-img-sq"));
        var result = await SquashJsonAsync(image, other, "-t", tag);
        result.GetProperty("method").GetString()!.ShouldContain("not an ancestor");
        await _h.ShouldBeSquashOfAsync(tag, image, other);
    }

    private async Task<JsonElement> SquashJsonAsync(string image, string onto, params string[] more)
    {
        var (code, stdout, stderr) = await _h.CliAsync(null, ["squash", image, "--onto", onto, "--cache-dir", _h.TempDir(), "--json", .. more]);
        code.ShouldBe(0, stderr);
        return JsonDocument.Parse(stdout).RootElement.Clone();
    }
}
