using System.Net;
using System.Net.Http.Headers;
using System.Text;
using LayerTool.Image;

namespace LayerTool.Registry.Tests;

/// <summary>A request as the fake saw it.</summary>
public sealed record SeenRequest(HttpMethod Method, Uri Uri, string? Authorization, string? Range);

/// <summary>
/// An in-process HTTP handler standing in for a registry: each test routes requests with its own function and
/// reads back what was asked (method, URL, Authorization, Range).
/// </summary>
public sealed class FakeRegistry(Func<HttpRequestMessage, int, HttpResponseMessage?> route) : HttpMessageHandler
{
    private readonly List<SeenRequest> _seen = [];
    private readonly Lock _gate = new();

    public IReadOnlyList<SeenRequest> Seen
    {
        get
        {
            lock (_gate) return [.. _seen];
        }
    }

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        int n;
        lock (_gate)
        {
            _seen.Add(new SeenRequest(request.Method, request.RequestUri!, request.Headers.Authorization?.ToString(), request.Headers.Range?.ToString()));
            n = _seen.Count(s => s.Uri == request.RequestUri && s.Method == request.Method);
        }

        var response = route(request, n) ?? Status(HttpStatusCode.NotFound);
        response.RequestMessage = request;
        return Task.FromResult(response);
    }

    public static HttpResponseMessage Status(HttpStatusCode status) => new(status) { Content = new ByteArrayContent([]) };

    public static HttpResponseMessage Json(string json, string? mediaType = null, HttpStatusCode status = HttpStatusCode.OK)
    {
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes(json));
        content.Headers.ContentType = new MediaTypeHeaderValue(mediaType ?? "application/json");
        return new HttpResponseMessage(status) { Content = content };
    }

    public static HttpResponseMessage Bytes(byte[] bytes, HttpStatusCode status = HttpStatusCode.OK, int? cutAfter = null)
    {
        HttpContent content = cutAfter is { } cut ? new StreamContent(new CutStream(bytes, cut)) : new ByteArrayContent(bytes);
        content.Headers.ContentLength = bytes.Length;
        return new HttpResponseMessage(status) { Content = content };
    }

    public static HttpResponseMessage Challenge(string header)
    {
        var response = Status(HttpStatusCode.Unauthorized);
        response.Headers.TryAddWithoutValidation("WWW-Authenticate", header);
        return response;
    }

    public static RegistrySettings Settings(FakeRegistry fake, string cache) => new()
    {
        CacheDirectory = cache,
        Handler = fake,
        RetryBaseDelay = TimeSpan.FromMilliseconds(1),
        MaxRetryDelay = TimeSpan.FromMilliseconds(50),
    };

    public static Descriptor Blob(byte[] bytes) => new(MediaTypes.OciLayerGzip, Digest.Compute(bytes), bytes.Length);

    /// <summary>Serves some bytes, then fails as a cut connection does.</summary>
    private sealed class CutStream(byte[] bytes, int cut) : Stream
    {
        private int _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => bytes.Length;

        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_position >= cut) throw new IOException("connection reset by the test");
            var n = Math.Min(count, cut - _position);
            Array.Copy(bytes, _position, buffer, offset, n);
            _position += n;
            return n;
        }

        public override void Flush() { }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

/// <summary>A temp directory removed at the end of the test.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("layertool-registry-test-").FullName;

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
