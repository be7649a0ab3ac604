using System.IO.Pipelines;

namespace LayerTool.Docker.Squash;

/// <summary>
/// An archive handed to a load request while it is being written: <see cref="Writer"/> takes the bytes,
/// <see cref="Body"/> is the request's body. Writes land in the pipe's own buffers and are released to the
/// reader a MiB at a time, so the body goes out in large pieces (a body sent in 4 KiB pieces made the engine's
/// load several times slower, docs/design/fast-path.md) and at most a few MiB are held. When the request
/// ends early the writer fails with <see cref="ClosedException"/> instead of blocking.
/// </summary>
internal sealed class ArchiveUpload
{
    private const int Batch = 1 << 20;

    private readonly Pipe _pipe = new(new PipeOptions(
        pauseWriterThreshold: 8 * Batch,
        resumeWriterThreshold: 4 * Batch,
        minimumSegmentSize: 256 << 10,
        // The request's copy loop runs on the writer's thread when a batch is released (and the writer resumes
        // on the sender's): no hand-off between pool threads per MiB, which on two cores cost more than it gave.
        readerScheduler: PipeScheduler.Inline,
        writerScheduler: PipeScheduler.Inline,
        useSynchronizationContext: false));

    public ArchiveUpload()
    {
        Writer = new BatchingWriter(_pipe.Writer);
        Body = _pipe.Reader.AsStream();
    }

    /// <summary>Where the archive is written.</summary>
    public Stream Writer { get; }

    /// <summary>The request body (ends when <see cref="CompleteAsync"/> is called).</summary>
    public Stream Body { get; }

    /// <summary>Releases what is buffered and ends the body.</summary>
    public async ValueTask CompleteAsync()
    {
        await Writer.FlushAsync().ConfigureAwait(false);
        await _pipe.Writer.CompleteAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// The request is over (sent, refused before reading, or failed): a writer still writing must get
    /// <see cref="ClosedException"/> rather than wait for a reader that is gone.
    /// </summary>
    public void RequestEnded() => _pipe.Reader.Complete();

    /// <summary>Ends the body with an error: the request fails, and the engine has no complete archive.</summary>
    public ValueTask FailAsync(Exception error) => _pipe.Writer.CompleteAsync(error);

    /// <summary>The request stopped reading the body before the archive was complete.</summary>
    public sealed class ClosedException : IOException
    {
        public ClosedException() : base("the load request ended before the archive was sent") { }

        public ClosedException(string message) : base(message) { }

        public ClosedException(string message, Exception inner) : base(message, inner) { }
    }

    private sealed class BatchingWriter(PipeWriter pipe) : Stream
    {
        private int _unflushed;

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            while (!buffer.IsEmpty)
            {
                var target = pipe.GetMemory();
                var n = Math.Min(target.Length, buffer.Length);
                buffer.Span[..n].CopyTo(target.Span);
                pipe.Advance(n);
                buffer = buffer[n..];
                _unflushed += n;
            }
            if (_unflushed >= Batch) await FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count).GetAwaiter().GetResult();

        public override async Task FlushAsync(CancellationToken cancellationToken)
        {
            _unflushed = 0;
            var result = await pipe.FlushAsync(cancellationToken).ConfigureAwait(false);
            if (result.IsCompleted || result.IsCanceled) throw new ClosedException();
        }

        public override void Flush() => FlushAsync(CancellationToken.None).GetAwaiter().GetResult();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
