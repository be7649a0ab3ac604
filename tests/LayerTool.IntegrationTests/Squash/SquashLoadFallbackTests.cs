using LayerTool.Image.Squash;
using LayerTool.Build;
using LayerTool.Docker.Squash;
using LayerTool.Docker.Images;
using LayerTool.Docker.Sweep;
using LayerTool.Image;
using LayerTool.Image.Formats;
using LayerTool.Docker;

namespace LayerTool.IntegrationTests.Squash;

/// <summary>
/// The load path: on the fast path the engine reads the layer from a pipe while it is written (or, without
/// the pipe, the partial archive streams into the engine while the layer is written); an engine that refuses
/// the partial archive gets a full one; nothing is loaded or tagged on failure, and no pipe is left behind.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class SquashLoadFallbackTests(EngineFixture engine) : IAsyncLifetime
{
    private readonly SquashHarness _h = new(engine);

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => _h.DisposeAsync().AsTask();

    /// <summary>The real engine, except that the first <paramref name="refusals"/> loads are refused.</summary>
    private sealed class RefusingEngine(IImageEngine inner, int refusals) : IImageEngine
    {
        private int _loads;

        public int Loads => _loads;

        public Task<ImageStoreKind> GetStoreKindAsync(CancellationToken cancellationToken) => inner.GetStoreKindAsync(cancellationToken);

        public Task<EngineImage?> TryInspectImageAsync(string reference, CancellationToken cancellationToken) => inner.TryInspectImageAsync(reference, cancellationToken);

        public Task<Stream> SaveImageAsync(string reference, CancellationToken cancellationToken) => inner.SaveImageAsync(reference, cancellationToken);

        public Task<T> ExportImageFilesystemAsync<T>(string imageId, Func<Stream, CancellationToken, Task<T>> read, CancellationToken cancellationToken) =>
            inner.ExportImageFilesystemAsync(imageId, read, cancellationToken);

        public Task<IReadOnlyList<string>> LoadImageAsync(Stream archive, CancellationToken cancellationToken) =>
            Interlocked.Increment(ref _loads) <= refusals
                ? throw new EngineException("the engine refused to load the image: layer does not exist (simulated)")
                : inner.LoadImageAsync(archive, cancellationToken);

        public Task TagImageAsync(string image, string tag, CancellationToken cancellationToken) => inner.TagImageAsync(image, tag, cancellationToken);

        public Task RemoveImageAsync(string reference, CancellationToken cancellationToken) => inner.RemoveImageAsync(reference, cancellationToken);
    }

    /// <summary>The real engine, recording how each load's body came and how many bytes it had, able to cut a
    /// squash short once <paramref name="cancelAfter"/> bytes of a body were read, and to hold the first body
    /// back for <paramref name="holdFirstBody"/> (an engine slow to unpack it).</summary>
    private sealed class WatchingEngine(IImageEngine inner, CancellationTokenSource? cancel = null, long cancelAfter = long.MaxValue,
        TimeSpan holdFirstBody = default) : IImageEngine
    {
        /// <summary>Cancelled as soon as a load has succeeded (before the squash hears of it).</summary>
        public CancellationTokenSource? CancelWhenLoaded { get; init; }

        private readonly List<CountingStream> _bodies = [];

        public List<bool> SeekableBodies { get; } = [];

        /// <summary>Bytes read from each load's body.</summary>
        public List<long> BodyBytes => [.. _bodies.Select(b => b.Position)];

        public Task<ImageStoreKind> GetStoreKindAsync(CancellationToken cancellationToken) => inner.GetStoreKindAsync(cancellationToken);

        public Task<EngineImage?> TryInspectImageAsync(string reference, CancellationToken cancellationToken) => inner.TryInspectImageAsync(reference, cancellationToken);

        public Task<Stream> SaveImageAsync(string reference, CancellationToken cancellationToken) => inner.SaveImageAsync(reference, cancellationToken);

        public Task<T> ExportImageFilesystemAsync<T>(string imageId, Func<Stream, CancellationToken, Task<T>> read, CancellationToken cancellationToken) =>
            inner.ExportImageFilesystemAsync(imageId, read, cancellationToken);

        public Task<IReadOnlyList<string>> LoadImageAsync(Stream archive, CancellationToken cancellationToken)
        {
            SeekableBodies.Add(archive.CanSeek);
            var body = new CountingStream(archive, cancel, cancelAfter, _bodies.Count == 0 ? holdFirstBody : TimeSpan.Zero);
            _bodies.Add(body);
            return LoadAsync(body, cancellationToken);
        }

        private async Task<IReadOnlyList<string>> LoadAsync(Stream body, CancellationToken cancellationToken)
        {
            var loaded = await inner.LoadImageAsync(body, cancellationToken);
            CancelWhenLoaded?.Cancel();
            return loaded;
        }

        public Task TagImageAsync(string image, string tag, CancellationToken cancellationToken) => inner.TagImageAsync(image, tag, cancellationToken);

        public Task RemoveImageAsync(string reference, CancellationToken cancellationToken) => inner.RemoveImageAsync(reference, cancellationToken);
    }

    private sealed class CountingStream(Stream inner, CancellationTokenSource? cancel, long after, TimeSpan hold) : Stream
    {
        private long _read;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => _read; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Count(inner.Read(buffer, offset, count));

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (hold > TimeSpan.Zero)
            {
                await Task.Delay(hold, cancellationToken);
                hold = TimeSpan.Zero;
            }
            return Count(await inner.ReadAsync(buffer, cancellationToken));
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        private int Count(int n)
        {
            _read += n;
            if (_read >= after) cancel?.Cancel();
            return n;
        }

        public override void Flush() { }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }

    private const string Busybox = "busybox:latest";

    private const string Big = """
        FROM busybox:latest
        RUN mkdir /s && head -c 6000000 /dev/urandom > /s/big && echo small > /s/small && rm /bin/od
        RUN head -c 3000000 /dev/urandom > /s/big2 && ln /s/big2 /s/big2.link && rm /s/small
        """;

    /// <summary>Cancels a squash when it reports <paramref name="phase"/> (synchronously, as the squash reports it),
    /// right away or after <paramref name="delay"/>.</summary>
    private sealed class CancelAtPhase(string phase, CancellationTokenSource cancel, TimeSpan delay) : IProgress<SquashProgress>
    {
        public bool Reached { get; private set; }

        public void Report(SquashProgress value)
        {
            if (value.Phase != phase || Reached) return;
            Reached = true;
            if (delay == TimeSpan.Zero) cancel.Cancel();
            else cancel.CancelAfter(delay);
        }
    }

    private static EngineSquashSettings Streaming(string cacheDir) => new(cacheDir) { LoadThroughPipe = false };

    /// <summary>Pipes of LayerTool's loads still in the engine's temp directory (an unpacked upload not cleaned up).</summary>
    private async Task<string[]> LeftoverPipesAsync(string anyImage)
    {
        var inspected = (await _h.Images.TryInspectImageAsync(anyImage, CancellationToken.None)).ShouldNotBeNull();
        var upper = inspected.GraphDriver.ShouldNotBeNull().Data["UpperDir"];
        var temp = Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(Path.GetDirectoryName(upper)))!, "tmp");
        Directory.Exists(temp).ShouldBeTrue(temp);
        return [.. Directory.EnumerateDirectories(temp, "docker-import-*").SelectMany(d => Directory.EnumerateDirectories(d, "layertool-*"))];
    }

    [Fact]
    public async Task The_fast_path_loads_the_layer_through_a_pipe_the_engine_reads_while_it_is_written()
    {
        var image = await _h.BuildAsync("piped", Big);
        var tag = _h.Track(_h.Name("piped-sq"));
        var watching = new WatchingEngine(_h.Images);
        var result = await new EngineSquashService(watching, new EngineSquashSettings(_h.CacheDir))
            .SquashAsync(SquashRequest.OnEngine(image, Busybox, [tag]), null, CancellationToken.None);
        result.Method.ShouldNotBeNull().ShouldStartWith("fast path");
        result.LayerBytes.ShouldBeGreaterThan(9_000_000);
        watching.SeekableBodies.ShouldBe([false], "one load");
        watching.BodyBytes.Single().ShouldBeLessThan(64 << 10, "the upload carries the config and manifest, not the layer");
        result.Tags.ShouldBe([tag]);
        await _h.ShouldBeSquashOfAsync(tag, image, Busybox);
        (await LeftoverPipesAsync(image)).ShouldBeEmpty();

        // The same squash written to a file (engine API, no load) has the same layer.
        var file = Path.Combine(_h.TempDir(), "api.tar");
        var api = await new EngineSquashService(_h.Images, new EngineSquashSettings(_h.CacheDir))
            .SquashAsync((SquashRequest.OnEngine(image, Busybox, []) with { Load = false, OutputPath = file, FastPath = false }), null, CancellationToken.None);
        api.LayerDiffId.ShouldBe(result.LayerDiffId);
    }

    [Fact]
    public async Task A_piped_squash_whose_layer_the_engine_has_already_loads_once_without_the_pipe_being_read()
    {
        var image = await _h.BuildAsync("piped-twice", Big);
        var first = _h.Track(_h.Name("piped-twice-1"));
        var one = await new EngineSquashService(_h.Images, new EngineSquashSettings(_h.CacheDir))
            .SquashAsync(SquashRequest.OnEngine(image, Busybox, [first]), null, CancellationToken.None);

        // The same squash again (another time, so another config): the engine has the layer and never opens the pipe.
        var second = _h.Track(_h.Name("piped-twice-2"));
        var watching = new WatchingEngine(_h.Images);
        var two = await new EngineSquashService(watching, new EngineSquashSettings(_h.CacheDir) { Clock = new FixedClock(DateTimeOffset.UtcNow.AddHours(1)) })
            .SquashAsync(SquashRequest.OnEngine(image, Busybox, [second]), null, CancellationToken.None);
        watching.SeekableBodies.ShouldBe([false], "one load, through the pipe's archive");
        two.LayerDiffId.ShouldBe(one.LayerDiffId);
        two.ImageId.ShouldNotBe(one.ImageId);
        await _h.ShouldBeSquashOfAsync(second, image, Busybox);
        (await LeftoverPipesAsync(image)).ShouldBeEmpty();
    }

    private sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }

    [Fact]
    public async Task Without_the_pipe_the_fast_path_streams_the_partial_archive_while_it_writes_the_layer()
    {
        var image = await _h.BuildAsync("streamed", Big);
        var tag = _h.Track(_h.Name("streamed-sq"));
        var watching = new WatchingEngine(_h.Images);
        var result = await new EngineSquashService(watching, Streaming(_h.CacheDir))
            .SquashAsync(SquashRequest.OnEngine(image, Busybox, [tag]), null, CancellationToken.None);
        result.Method.ShouldNotBeNull().ShouldStartWith("fast path");
        watching.SeekableBodies.ShouldBe([false], "one load, streamed (not a finished file)");
        watching.BodyBytes.Single().ShouldBeGreaterThan(result.LayerBytes, "the layer is inside the upload");
        result.Tags.ShouldBe([tag]);
        await _h.ShouldBeSquashOfAsync(tag, image, Busybox);
    }

    [Fact]
    public async Task When_the_pipe_does_not_appear_in_time_the_layer_is_streamed_in_the_archive_instead()
    {
        var image = await _h.BuildAsync("pipe-late", Big);
        var tag = _h.Track(_h.Name("pipe-late-sq"));
        // The first upload reaches the engine only after the squash stopped waiting for its pipe.
        var watching = new WatchingEngine(_h.Images, holdFirstBody: TimeSpan.FromSeconds(2));
        var result = await new EngineSquashService(watching, new EngineSquashSettings(_h.CacheDir) { LoadPipeWait = TimeSpan.FromMilliseconds(200) })
            .SquashAsync(SquashRequest.OnEngine(image, Busybox, [tag]), null, CancellationToken.None);
        watching.SeekableBodies.ShouldBe([false, false], "the piped upload, abandoned; then the streamed one");
        watching.BodyBytes[1].ShouldBeGreaterThan(result.LayerBytes);
        result.Tags.ShouldBe([tag]);
        await _h.ShouldBeSquashOfAsync(tag, image, Busybox);
        (await LeftoverPipesAsync(image)).ShouldBeEmpty();
    }

    [Theory]
    [InlineData("at-load")] // before the engine opens the pipe: it is opened and closed at once, the engine reads no layer
    [InlineData("mid-write")] // 50 ms into a 100 MB layer: the pipe closes early, the engine reads a truncated layer
    [InlineData("after-load")] // the engine had the whole layer and loaded the image: the squash removes it
    public async Task A_piped_squash_cancelled_at_the_load_loads_and_tags_nothing_and_leaves_no_pipe(string when)
    {
        var image = await _h.BuildAsync($"piped-cut-{when}", """
            FROM busybox:latest
            RUN mkdir /s && head -c 30000000 /dev/urandom > /s/gone && rm /bin/od
            RUN head -c 100000000 /dev/urandom > /s/big && rm /s/gone
            """);
        var time = DateTimeOffset.FromUnixTimeSeconds(1_600_000_000);
        var file = Path.Combine(_h.TempDir(), "expected.tar");
        var expected = await new EngineSquashService(_h.Images, new EngineSquashSettings(_h.CacheDir))
            .SquashAsync((SquashRequest.OnEngine(image, Busybox, []) with { Timestamp = time, Load = false, OutputPath = file }), null, CancellationToken.None);

        var tag = _h.Track(_h.Name($"piped-cut-{when}-sq"));
        using var cancel = new CancellationTokenSource();
        var atLoad = new CancelAtPhase("load", cancel, when == "mid-write" ? TimeSpan.FromMilliseconds(50) : TimeSpan.Zero);
        var engine = new WatchingEngine(_h.Images) { CancelWhenLoaded = when == "after-load" ? cancel : null };
        await Should.ThrowAsync<OperationCanceledException>(() => new EngineSquashService(engine, new EngineSquashSettings(_h.CacheDir))
            .SquashAsync((SquashRequest.OnEngine(image, Busybox, [tag]) with { Timestamp = time }), when == "after-load" ? null : atLoad, cancel.Token));
        engine.SeekableBodies.ShouldBe([false], "one load");
        (await _h.Images.TryInspectImageAsync(expected.ImageId, CancellationToken.None)).ShouldBeNull("nothing was loaded (or it was removed)");
        (await _h.Images.TryInspectImageAsync(tag, CancellationToken.None)).ShouldBeNull("nothing was tagged");
        (await LeftoverPipesAsync(image)).ShouldBeEmpty("the engine's load ended (it is not left waiting on the pipe)");

        // The engine is not stuck: the same squash then loads.
        var again = await new EngineSquashService(_h.Images, new EngineSquashSettings(_h.CacheDir))
            .SquashAsync((SquashRequest.OnEngine(image, Busybox, [tag]) with { Timestamp = time }), null, CancellationToken.None);
        again.ImageId.ShouldBe(expected.ImageId);
    }

    [Fact]
    public async Task A_load_left_waiting_on_its_pipe_by_a_killed_layertool_is_ended_by_the_next_piped_squash()
    {
        // What a LayerTool killed (SIGKILL) right after sending the manifest leaves: a load whose engine waits on
        // the pipe, from a process that is gone (no process has ID 999999999).
        var config = ImageConfig.Parse("""
            {"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:1111111111111111111111111111111111111111111111111111111111111111"]}}
            """u8);
        var orphan = new ComposedImage(config, [new DescribedLayer(config.DiffIds[0], null)]);
        // Named as LoadPipe names a pipe's directory: the owner's PID, start time and host key (ours), then a random part.
        var orphanName = $"layertool-999999999.1.{ProcessOwner.Current.ShouldNotBeNull().Host}.0bad";
        var archive = new MemoryStream([
            .. StreamedDockerArchive.PipedHead(orphanName, DateTimeOffset.UnixEpoch),
            .. StreamedDockerArchive.PipedSuffix(orphan, 0, orphanName, DateTimeOffset.UnixEpoch)]);
        var waiting = _h.Images.LoadImageAsync(archive, CancellationToken.None);
        var image = await _h.BuildAsync("piped-orphan", Big);
        for (var i = 0; i < 200 && !(await LeftoverPipesAsync(image)).Any(p => p.EndsWith(orphanName, StringComparison.Ordinal)); i++)
            await Task.Delay(50);
        await Task.Delay(200);
        waiting.IsCompleted.ShouldBeFalse("the engine waits on the pipe");

        var tag = _h.Track(_h.Name("piped-orphan-sq"));
        await new EngineSquashService(_h.Images, new EngineSquashSettings(_h.CacheDir))
            .SquashAsync(SquashRequest.OnEngine(image, Busybox, [tag]), null, CancellationToken.None);
        (await Should.ThrowAsync<EngineException>(() => waiting.WaitAsync(TimeSpan.FromSeconds(30)))).Message.ShouldContain("diffID");
        (await LeftoverPipesAsync(image)).ShouldBeEmpty();
        await _h.ShouldBeSquashOfAsync(tag, image, Busybox);
    }

    [Fact]
    public async Task A_piped_squash_cancelled_after_loading_an_image_the_engine_had_already_leaves_it()
    {
        var image = await _h.BuildAsync("piped-had", Big);
        var time = DateTimeOffset.FromUnixTimeSeconds(1_600_000_000);
        var tag = _h.Track(_h.Name("piped-had-sq"));
        var first = await new EngineSquashService(_h.Images, new EngineSquashSettings(_h.CacheDir))
            .SquashAsync((SquashRequest.OnEngine(image, Busybox, [tag]) with { Timestamp = time }), null, CancellationToken.None);

        using var cancel = new CancellationTokenSource();
        var engine = new WatchingEngine(_h.Images) { CancelWhenLoaded = cancel };
        await Should.ThrowAsync<OperationCanceledException>(() => new EngineSquashService(engine, new EngineSquashSettings(_h.CacheDir))
            .SquashAsync((SquashRequest.OnEngine(image, Busybox, []) with { Timestamp = time }), null, cancel.Token));
        (await _h.Images.TryInspectImageAsync(tag, CancellationToken.None)).ShouldNotBeNull().Id.ShouldBe(first.ImageId);
    }

    [Fact]
    public async Task A_squash_cut_short_while_streaming_loads_and_tags_nothing()
    {
        var image = await _h.BuildAsync("streamed-cut", Big);
        var when = DateTimeOffset.FromUnixTimeSeconds(1_600_000_000);
        // The image the squash would load: reproducible, so a squash into a file gives its ID.
        var file = Path.Combine(_h.TempDir(), "expected.tar");
        var expected = await new EngineSquashService(_h.Images, new EngineSquashSettings(_h.CacheDir))
            .SquashAsync((SquashRequest.OnEngine(image, Busybox, []) with { Timestamp = when, Load = false, OutputPath = file }), null, CancellationToken.None);

        var tag = _h.Track(_h.Name("streamed-cut-sq"));
        using var cancel = new CancellationTokenSource();
        var watching = new WatchingEngine(_h.Images, cancel, cancelAfter: 2_000_000);
        await Should.ThrowAsync<OperationCanceledException>(() => new EngineSquashService(watching, Streaming(_h.CacheDir))
            .SquashAsync((SquashRequest.OnEngine(image, Busybox, [tag]) with { Timestamp = when }), null, cancel.Token));
        watching.SeekableBodies.ShouldBe([false]);
        (await _h.Images.TryInspectImageAsync(expected.ImageId, CancellationToken.None)).ShouldBeNull("nothing was loaded");
        (await _h.Images.TryInspectImageAsync(tag, CancellationToken.None)).ShouldBeNull("nothing was tagged");
    }

    [Fact]
    public async Task A_refused_partial_archive_falls_back_to_a_full_one_and_a_refused_full_one_tags_nothing()
    {
        var image = await _h.BuildAsync("fallback", """
            FROM busybox:latest
            RUN mkdir /f && echo fallback > /f/file && rm /bin/od
            """);
        var tag = _h.Track(_h.Name("fallback-sq"));
        var refusing = new RefusingEngine(_h.Images, 1);
        var service = new EngineSquashService(refusing, new EngineSquashSettings(_h.CacheDir));
        var result = await service.SquashAsync(SquashRequest.OnEngine(image, "busybox:latest", [tag]), null, CancellationToken.None);
        refusing.Loads.ShouldBe(2);
        result.Tags.ShouldBe([tag]);
        await _h.ShouldBeSquashOfAsync(tag, image, "busybox:latest");

        var never = _h.Track(_h.Name("fallback-never"));
        var stubborn = new EngineSquashService(new RefusingEngine(_h.Images, 2), new EngineSquashSettings(_h.CacheDir));
        var e = await Should.ThrowAsync<EngineException>(() =>
            stubborn.SquashAsync((SquashRequest.OnEngine(image, "busybox:latest", [never]) with { Timestamp = DateTimeOffset.FromUnixTimeSeconds(1) }), null, CancellationToken.None));
        e.Message.ShouldContain("refused");
        (await _h.Images.TryInspectImageAsync(never, CancellationToken.None)).ShouldBeNull();
    }
}
