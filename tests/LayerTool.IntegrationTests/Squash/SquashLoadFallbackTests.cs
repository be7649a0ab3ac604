using LayerTool.Build;
using LayerTool.Build.Squash;
using LayerTool.Docker.Images;
using LayerTool.Docker.Squash;

namespace LayerTool.IntegrationTests.Squash;

/// <summary>The load path: an engine that refuses the partial archive gets a full one; nothing is tagged on failure.</summary>
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
