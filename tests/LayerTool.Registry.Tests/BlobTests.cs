using System.Net;
using System.Net.Http.Headers;
using LayerTool.Image;

namespace LayerTool.Registry.Tests;

public sealed class BlobTests
{
    private static readonly ImageReference Repo = ImageReference.Parse("localhost:5000/app:1");

    private static byte[] Data(int size)
    {
        var bytes = new byte[size];
        new Random(size).NextBytes(bytes);
        return bytes;
    }

    private static HttpResponseMessage Partial(byte[] bytes, long from)
    {
        var response = FakeRegistry.Bytes(bytes[(int)from..], HttpStatusCode.PartialContent);
        response.Content.Headers.ContentRange = new ContentRangeHeaderValue(from, bytes.Length - 1, bytes.Length);
        return response;
    }

    [Fact]
    public async Task A_cut_download_resumes_with_a_closed_range_and_is_kept_only_when_verified()
    {
        using var dir = new TempDir();
        var bytes = Data(300_000);
        var blob = FakeRegistry.Blob(bytes);
        var fake = new FakeRegistry((request, n) =>
        {
            if (request.RequestUri!.AbsolutePath == "/v2/") return FakeRegistry.Status(HttpStatusCode.OK);
            if (request.Headers.Range?.Ranges.Single() is { } range) return Partial(bytes, range.From!.Value);
            return FakeRegistry.Bytes(bytes, cutAfter: 120_000);
        });
        using var client = new RegistryClient(FakeRegistry.Settings(fake, dir.Path));
        var path = await client.FetchBlobAsync(Repo, blob, CancellationToken.None);
        (await File.ReadAllBytesAsync(path)).ShouldBe(bytes);
        var blobs = fake.Seen.Where(s => s.Uri.AbsolutePath.Contains("/blobs/", StringComparison.Ordinal)).ToList();
        blobs.Count.ShouldBe(2);
        blobs[0].Range.ShouldBeNull();
        blobs[1].Range.ShouldBe("bytes=120000-299999");
        File.Exists(client.Cache.PartialPathOf(blob.Digest)).ShouldBeFalse();
    }

    [Fact]
    public async Task A_200_answer_to_a_range_restarts_the_blob_cleanly()
    {
        using var dir = new TempDir();
        var bytes = Data(200_000);
        var blob = FakeRegistry.Blob(bytes);
        var fake = new FakeRegistry((request, n) => request.RequestUri!.AbsolutePath == "/v2/"
            ? FakeRegistry.Status(HttpStatusCode.OK)
            : FakeRegistry.Bytes(bytes, cutAfter: n == 1 ? 50_000 : null));
        using var client = new RegistryClient(FakeRegistry.Settings(fake, dir.Path));
        var path = await client.FetchBlobAsync(Repo, blob, CancellationToken.None);
        (await File.ReadAllBytesAsync(path)).ShouldBe(bytes);
        fake.Seen[^1].Range.ShouldBe("bytes=50000-199999");
    }

    [Fact]
    public async Task A_partial_file_of_an_earlier_run_is_resumed()
    {
        using var dir = new TempDir();
        var bytes = Data(100_000);
        var blob = FakeRegistry.Blob(bytes);
        var fake = new FakeRegistry((request, _) => request.RequestUri!.AbsolutePath == "/v2/"
            ? FakeRegistry.Status(HttpStatusCode.OK)
            : request.Headers.Range?.Ranges.Single() is { } range ? Partial(bytes, range.From!.Value) : FakeRegistry.Bytes(bytes));
        using var client = new RegistryClient(FakeRegistry.Settings(fake, dir.Path));
        Directory.CreateDirectory(Path.GetDirectoryName(client.Cache.PartialPathOf(blob.Digest))!);
        await File.WriteAllBytesAsync(client.Cache.PartialPathOf(blob.Digest), bytes[..70_000]);
        await client.FetchBlobAsync(Repo, blob, CancellationToken.None);
        fake.Seen.Where(s => s.Uri.AbsolutePath.Contains("/blobs/", StringComparison.Ordinal)).Select(s => s.Range).ShouldBe(["bytes=70000-99999"]);
    }

    [Fact]
    public async Task A_corrupt_blob_is_refused_and_nothing_is_kept()
    {
        using var dir = new TempDir();
        var bytes = Data(10_000);
        var blob = FakeRegistry.Blob(bytes);
        var corrupt = (byte[])bytes.Clone();
        corrupt[5000] ^= 0xff;
        var fake = new FakeRegistry((request, _) => request.RequestUri!.AbsolutePath == "/v2/" ? FakeRegistry.Status(HttpStatusCode.OK) : FakeRegistry.Bytes(corrupt));
        using var client = new RegistryClient(FakeRegistry.Settings(fake, dir.Path));
        var e = await Should.ThrowAsync<RegistryException>(() => client.FetchBlobAsync(Repo, blob, CancellationToken.None));
        e.Message.ShouldContain("digest mismatch");
        File.Exists(client.Cache.PathOf(blob.Digest)).ShouldBeFalse();
        File.Exists(client.Cache.PartialPathOf(blob.Digest)).ShouldBeFalse();
    }

    [Fact]
    public async Task Retries_503_honouring_retry_after_then_succeeds()
    {
        using var dir = new TempDir();
        var bytes = Data(1000);
        var fake = new FakeRegistry((request, n) =>
        {
            if (request.RequestUri!.AbsolutePath == "/v2/") return FakeRegistry.Status(HttpStatusCode.OK);
            if (n <= 2)
            {
                var busy = FakeRegistry.Status(n == 1 ? HttpStatusCode.TooManyRequests : HttpStatusCode.ServiceUnavailable);
                busy.Headers.RetryAfter = new RetryConditionHeaderValue(TimeSpan.Zero);
                return busy;
            }
            return FakeRegistry.Bytes(bytes);
        });
        using var client = new RegistryClient(FakeRegistry.Settings(fake, dir.Path));
        await client.FetchBlobAsync(Repo, FakeRegistry.Blob(bytes), CancellationToken.None);
        fake.Seen.Count(s => s.Uri.AbsolutePath.Contains("/blobs/", StringComparison.Ordinal)).ShouldBe(3);
    }

    [Fact]
    public async Task A_cached_blob_is_not_fetched_again()
    {
        using var dir = new TempDir();
        var bytes = Data(1000);
        var fake = new FakeRegistry((request, _) => request.RequestUri!.AbsolutePath == "/v2/" ? FakeRegistry.Status(HttpStatusCode.OK) : FakeRegistry.Bytes(bytes));
        using var client = new RegistryClient(FakeRegistry.Settings(fake, dir.Path));
        await client.FetchBlobAsync(Repo, FakeRegistry.Blob(bytes), CancellationToken.None);
        await client.FetchBlobAsync(Repo, FakeRegistry.Blob(bytes), CancellationToken.None);
        fake.Seen.Count(s => s.Uri.AbsolutePath.Contains("/blobs/", StringComparison.Ordinal)).ShouldBe(1);
    }

    [Fact]
    public async Task Plain_http_only_for_loopback_and_insecure_hosts()
    {
        using var dir = new TempDir();
        var fake = new FakeRegistry((request, _) => FakeRegistry.Status(HttpStatusCode.OK));
        using var client = new RegistryClient(FakeRegistry.Settings(fake, dir.Path) with { InsecureRegistries = ["reg.lan:5000"] });
        client.Origin("localhost:5000").BaseUri.Scheme.ShouldBe("http");
        client.Origin("127.0.0.1:5000").BaseUri.Scheme.ShouldBe("http");
        client.Origin("[::1]:5000").BaseUri.Scheme.ShouldBe("http");
        client.Origin("reg.lan:5000").BaseUri.Scheme.ShouldBe("http");
        client.Origin("reg.example").BaseUri.Scheme.ShouldBe("https");
        client.Origin("docker.io").BaseUri.ShouldBe(new Uri("https://registry-1.docker.io/"));
        Should.Throw<RegistryException>(() => new RegistryClient(FakeRegistry.Settings(fake, dir.Path) with { Mirrors = [RegistryMirror.Parse("http://mirror.example")] }));
    }
}
