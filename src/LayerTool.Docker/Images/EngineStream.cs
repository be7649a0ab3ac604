namespace LayerTool.Docker.Images;

/// <summary>
/// A read-only view of a response body from the engine client whose synchronous <c>Read</c> is not
/// supported (Docker.DotNet's chunked stream): synchronous reads are served by the asynchronous ones,
/// so readers written against plain <see cref="Stream"/> work on it. Every read, synchronous or not, also
/// observes the token of the operation the body belongs to: a reader that never passes a token (a tar reader
/// hashing a large file) still stops within one read of a cancellation, instead of reading the body to its end.
/// </summary>
internal sealed class EngineStream(Stream inner, CancellationToken operation = default) : LayerTool.Image.ReadOnlyStream
{
    public override int Read(byte[] buffer, int offset, int count) =>
        inner.ReadAsync(buffer.AsMemory(offset, count), operation).AsTask().GetAwaiter().GetResult();

    public override int Read(Span<byte> buffer)
    {
        var rented = System.Buffers.ArrayPool<byte>.Shared.Rent(buffer.Length);
        try
        {
            var n = inner.ReadAsync(rented.AsMemory(0, buffer.Length), operation).AsTask().GetAwaiter().GetResult();
            rented.AsSpan(0, n).CopyTo(buffer);
            return n;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!operation.CanBeCanceled || operation == cancellationToken) return await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        if (!cancellationToken.CanBeCanceled) return await inner.ReadAsync(buffer, operation).ConfigureAwait(false);
        using var both = CancellationTokenSource.CreateLinkedTokenSource(operation, cancellationToken);
        return await inner.ReadAsync(buffer, both.Token).ConfigureAwait(false);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await inner.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
