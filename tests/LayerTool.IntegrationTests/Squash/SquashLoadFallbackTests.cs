using LayerTool.Build;
using LayerTool.Build.Squash;
using LayerTool.Docker.Images;
using LayerTool.Docker.Squash;

namespace LayerTool.IntegrationTests.Squash;

/// <summary>
/// The load path: on the fast path the partial archive streams into the engine while the layer is written;
/// an engine that refuses the partial archive gets a full one; nothing is loaded or tagged on failure.
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

    /// <summary>The real engine, recording how each load's body came, and able to cut a squash short once
    /// <paramref name="cancelAfter"/> bytes of a body were read.</summary>
    private sealed class WatchingEngine(IImageEngine inner, CancellationTokenSource? cancel = null, long cancelAfter = long.MaxValue) : IImageEngine
    {
        public List<bool> SeekableBodies { get; } = [];

        public Task<ImageStoreKind> GetStoreKindAsync(CancellationToken cancellationToken) => inner.GetStoreKindAsync(cancellationToken);

        public Task<EngineImage?> TryInspectImageAsync(string reference, CancellationToken cancellationToken) => inner.TryInspectImageAsync(reference, cancellationToken);

        public Task<Stream> SaveImageAsync(string reference, CancellationToken cancellationToken) => inner.SaveImageAsync(reference, cancellationToken);

        public Task<T> ExportImageFilesystemAsync<T>(string imageId, Func<Stream, CancellationToken, Task<T>> read, CancellationToken cancellationToken) =>
            inner.ExportImageFilesystemAsync(imageId, read, cancellationToken);

        public Task<IReadOnlyList<string>> LoadImageAsync(Stream archive, CancellationToken cancellationToken)
        {
            SeekableBodies.Add(archive.CanSeek);
            return inner.LoadImageAsync(cancel is null ? archive : new CancellingStream(archive, cancel, cancelAfter), cancellationToken);
        }

        public Task TagImageAsync(string image, string tag, CancellationToken cancellationToken) => inner.TagImageAsync(image, tag, cancellationToken);

        public Task RemoveImageAsync(string reference, CancellationToken cancellationToken) => inner.RemoveImageAsync(reference, cancellationToken);
    }

    private sealed class CancellingStream(Stream inner, CancellationTokenSource cancel, long after) : Stream
    {
        private long _read;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => _read; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Count(inner.Read(buffer, offset, count));

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Count(await inner.ReadAsync(buffer, cancellationToken));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        private int Count(int n)
        {
            _read += n;
            if (_read >= after) cancel.Cancel();
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

    [Fact]
    public async Task The_fast_path_streams_the_partial_archive_while_it_writes_the_layer()
    {
        var image = await _h.BuildAsync("streamed", Big);
        var tag = _h.Track(_h.Name("streamed-sq"));
        var watching = new WatchingEngine(_h.Images);
        var result = await new EngineSquashService(watching, new EngineSquashSettings(_h.CacheDir))
            .SquashAsync(new SquashRequest(image, Busybox, [tag]), null, CancellationToken.None);
        result.Method.ShouldNotBeNull().ShouldStartWith("fast path");
        watching.SeekableBodies.ShouldBe([false], "one load, streamed (not a finished file)");
        result.Tags.ShouldBe([tag]);
        await _h.ShouldBeSquashOfAsync(tag, image, Busybox);

        // The same squash written to a file (engine API, no load) has the same layer.
        var file = Path.Combine(_h.TempDir(), "api.tar");
        var api = await new EngineSquashService(_h.Images, new EngineSquashSettings(_h.CacheDir))
            .SquashAsync(new SquashRequest(image, Busybox, [], Load: false, OutputPath: file, FastPath: false), null, CancellationToken.None);
        api.LayerDiffId.ShouldBe(result.LayerDiffId);
    }

    [Fact]
    public async Task A_squash_cut_short_while_streaming_loads_and_tags_nothing()
    {
        var image = await _h.BuildAsync("streamed-cut", Big);
        var when = DateTimeOffset.FromUnixTimeSeconds(1_600_000_000);
        // The image the squash would load: reproducible, so a squash into a file gives its ID.
        var file = Path.Combine(_h.TempDir(), "expected.tar");
        var expected = await new EngineSquashService(_h.Images, new EngineSquashSettings(_h.CacheDir))
            .SquashAsync(new SquashRequest(image, Busybox, [], Timestamp: when, Load: false, OutputPath: file), null, CancellationToken.None);

        var tag = _h.Track(_h.Name("streamed-cut-sq"));
        using var cancel = new CancellationTokenSource();
        var watching = new WatchingEngine(_h.Images, cancel, cancelAfter: 2_000_000);
        await Should.ThrowAsync<OperationCanceledException>(() => new EngineSquashService(watching, new EngineSquashSettings(_h.CacheDir))
            .SquashAsync(new SquashRequest(image, Busybox, [tag], Timestamp: when), null, cancel.Token));
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
        var result = await service.SquashAsync(new SquashRequest(image, "busybox:latest", [tag]), null, CancellationToken.None);
        refusing.Loads.ShouldBe(2);
        result.Tags.ShouldBe([tag]);
        await _h.ShouldBeSquashOfAsync(tag, image, "busybox:latest");

        var never = _h.Track(_h.Name("fallback-never"));
        var stubborn = new EngineSquashService(new RefusingEngine(_h.Images, 2), new EngineSquashSettings(_h.CacheDir));
        var e = await Should.ThrowAsync<EngineException>(() =>
            stubborn.SquashAsync(new SquashRequest(image, "busybox:latest", [never], Timestamp: DateTimeOffset.FromUnixTimeSeconds(1)), null, CancellationToken.None));
        e.Message.ShouldContain("refused");
        (await _h.Images.TryInspectImageAsync(never, CancellationToken.None)).ShouldBeNull();
    }
}
