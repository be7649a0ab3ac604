using System.Net;
using LayerTool.Image;
using LayerTool.Registry.Http;

namespace LayerTool.Registry;

public sealed partial class RegistryClient
{
    private const int CopyBuffer = 1 << 17;

    /// <summary>
    /// The blob's file in the cache, downloaded first when missing: digest and size checked while the bytes
    /// stream into <c>&lt;hex&gt;.partial</c>, which is renamed into place only when both match. A cut
    /// connection is resumed with a closed range <c>bytes=N-(size-1)</c> (a 206 with a matching
    /// <c>Content-Range</c> is appended; a 200 restarts the blob from zero); a partial file left by an earlier
    /// run is resumed too.
    /// </summary>
    public async Task<string> FetchBlobAsync(ImageReference repository, Descriptor blob, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(blob);
        if (Cache.TryGet(blob, out var cached))
        {
            Settings.Progress?.Report(new BlobProgress(blob.Digest, blob.Size, 0, blob.Size, 0, BlobState.Exists));
            return cached;
        }

        var final = Cache.PathOf(blob.Digest);
        Directory.CreateDirectory(Path.GetDirectoryName(final)!);
        var download = OpenPartial(blob.Digest);
        try
        {
            await using (download.File.ConfigureAwait(false))
            {
                using var state = await BlobDownload.StartAsync(download.File, blob, cancellationToken).ConfigureAwait(false);
                await ReadAsync(repository.Registry, async endpoint =>
                {
                    try
                    {
                        return await DownloadFromAsync(endpoint, repository, blob, state, cancellationToken).ConfigureAwait(false);
                    }
                    catch (RegistryException e) when (e.ErrorCode == BlobDownload.CorruptCode && endpoint.IsMirror)
                    {
                        // The next endpoint starts from zero: nothing this one sent is trusted.
                        await state.RestartAsync(cancellationToken).ConfigureAwait(false);
                        throw;
                    }
                }, cancellationToken).ConfigureAwait(false);
                await download.File.FlushAsync(cancellationToken).ConfigureAwait(false);
            }

            File.Move(download.Path, final, overwrite: true);
            Cache.RecordSource(blob.Digest, repository.Registry, repository.Repository);
            return final;
        }
        catch (Exception e) when (e is RegistryException or ImageFormatException && !cancellationToken.IsCancellationRequested)
        {
            // Bytes that failed verification are never kept; a download merely cut short stays to be resumed.
            if (e is ImageFormatException || (e is RegistryException r && r.ErrorCode == BlobDownload.CorruptCode))
            {
                File.Delete(download.Path);
            }

            throw;
        }
    }

    private (FileStream File, string Path) OpenPartial(Digest digest)
    {
        var partial = Cache.PartialPathOf(digest);
        try
        {
            return (new FileStream(partial, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.Asynchronous), partial);
        }
        catch (IOException)
        {
            // Another process downloads the same blob: download a private copy rather than wait for it.
            var own = $"{partial}-{Environment.ProcessId}-{Guid.NewGuid():N}";
            return (new FileStream(own, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.Asynchronous | FileOptions.DeleteOnClose), own);
        }
    }

    private async Task<bool> DownloadFromAsync(RegistryEndpoint endpoint, ImageReference repository, Descriptor blob, BlobDownload state,
        CancellationToken cancellationToken)
    {
        var what = $"blob {blob.Digest} of {repository.FamiliarName}";
        var attempts = endpoint.IsMirror ? 2 : Settings.MaxAttempts;
        var failures = 0;
        while (true)
        {
            if (state.Offset == blob.Size)
            {
                if (!state.Verify() )
                {
                    if (state.FromEarlierRun)
                    {
                        // What an earlier run left does not check out: fetch the blob again, from zero.
                        await state.RestartAsync(cancellationToken).ConfigureAwait(false);
                        Settings.Progress?.Report(state.Progress(BlobState.Retrying, "the partial download of an earlier run is corrupt: restarting"));
                        continue;
                    }

                    throw new RegistryException($"{endpoint}: {what}: digest mismatch: the {blob.Size} bytes served are not {blob.Digest}; refused")
                    {
                        ErrorCode = BlobDownload.CorruptCode,
                    };
                }

                Settings.Progress?.Report(state.Progress(BlobState.Done, endpoint.IsMirror ? endpoint.BaseUri.ToString() : null));
                return true;
            }

            var spec = new RequestSpec(HttpMethod.Get, endpoint.Api($"{repository.Repository}/blobs/{blob.Digest}"))
            {
                Range = state.Offset > 0 ? (state.Offset, blob.Size - 1) : null,
                What = what,
                Attempts = attempts,
            };
            try
            {
                using var response = await Transport.SendAsync(endpoint, spec, [PullScope(repository)], cancellationToken).ConfigureAwait(false);
                if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && state.Offset > 0)
                {
                    // The registry will not serve the range: start over without one.
                    await state.RestartAsync(cancellationToken).ConfigureAwait(false);
                    Settings.Progress?.Report(state.Progress(BlobState.Retrying, "range refused (416): restarting"));
                    continue;
                }

                if (!response.IsSuccessStatusCode)
                {
                    throw await RegistryTransport.ErrorAsync(response, endpoint, "download " + what, cancellationToken).ConfigureAwait(false);
                }

                if (state.Offset > 0)
                {
                    if (response.StatusCode == HttpStatusCode.OK)
                    {
                        // Ranges ignored: the whole blob comes again; take it from the start.
                        await state.RestartAsync(cancellationToken).ConfigureAwait(false);
                        Settings.Progress?.Report(state.Progress(BlobState.Retrying, "range ignored (200): restarting"));
                    }
                    else if (response.StatusCode != HttpStatusCode.PartialContent || !RangeMatches(response, state.Offset, blob.Size))
                    {
                        throw new RegistryException(
                            $"{endpoint}: {what}: asked for bytes {state.Offset}-{blob.Size - 1}, got {(int)response.StatusCode} with Content-Range '{response.Content.Headers.ContentRange}'");
                    }
                }

                if (response.Content.Headers.ContentLength is { } length && length != blob.Size - state.Offset)
                {
                    throw new RegistryException(
                        $"{endpoint}: {what}: the registry sends {length} bytes from offset {state.Offset} but the blob is {blob.Size} bytes")
                    {
                        ErrorCode = BlobDownload.CorruptCode,
                    };
                }

                Settings.Progress?.Report(state.Progress(BlobState.Transferring, null));
                var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
                await using (body.ConfigureAwait(false))
                {
                    await state.CopyAsync(body, Settings.StallTimeout, p => Settings.Progress?.Report(p), endpoint, what, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (RegistryTransport.IsTransient(e, cancellationToken) || e is OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                failures++;
                if (failures >= attempts)
                {
                    throw new RegistryException($"{endpoint}: {what}: the download failed {failures} times, last at byte {state.Offset} of {blob.Size}: {RegistryTransport.Cause(e)}", e);
                }

                state.Resumes++;
                Settings.Progress?.Report(state.Progress(BlobState.Retrying, $"{RegistryTransport.Cause(e)}; resuming at byte {state.Offset}"));
                await Transport.DelayAsync(failures, null, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private static bool RangeMatches(HttpResponseMessage response, long offset, long size)
    {
        var range = response.Content.Headers.ContentRange;
        return range is { HasRange: true, Unit: "bytes" } && range.From == offset && range.To == size - 1 && (range.Length is null || range.Length == size);
    }

    /// <summary>A blob being downloaded into its partial file: the offset reached and the hash of the bytes so far.</summary>
    private sealed class BlobDownload : IDisposable
    {
        public const string CorruptCode = "LAYERTOOL_BLOB_CORRUPT";

        private readonly FileStream _file;
        private readonly Descriptor _blob;
        private System.Security.Cryptography.IncrementalHash _hash;
        private long _transferred;

        private BlobDownload(FileStream file, Descriptor blob)
        {
            _file = file;
            _blob = blob;
            _hash = blob.Digest.CreateHashForDownload();
        }

        public long Offset { get; private set; }

        public int Resumes { get; set; }

        /// <summary>Starts from what the partial file holds (hashing it), or from zero when it is longer than the blob.</summary>
        public static async Task<BlobDownload> StartAsync(FileStream file, Descriptor blob, CancellationToken cancellationToken)
        {
            var download = new BlobDownload(file, blob);
            if (file.Length > blob.Size)
            {
                file.SetLength(0);
            }

            if (file.Length > 0)
            {
                var buffer = new byte[CopyBuffer];
                file.Position = 0;
                int n;
                while ((n = await file.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    download._hash.AppendData(buffer, 0, n);
                }

                download.Offset = file.Length;
                download.FromEarlierRun = true;
            }

            return download;
        }

        public BlobProgress Progress(BlobState state, string? message) => new(_blob.Digest, _blob.Size, _transferred, Offset, Resumes, state, message);

        public async Task RestartAsync(CancellationToken cancellationToken)
        {
            _hash.Dispose();
            _hash = _blob.Digest.CreateHashForDownload();
            _file.SetLength(0);
            _file.Position = 0;
            Offset = 0;
            FromEarlierRun = false;
            Resumes++;
            await _file.FlushAsync(cancellationToken).ConfigureAwait(false);
        }

        public async Task CopyAsync(Stream body, TimeSpan stall, Action<BlobProgress> report, RegistryEndpoint endpoint, string what, CancellationToken cancellationToken)
        {
            var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(CopyBuffer);
            try
            {
                _file.Position = Offset;
                var lastReport = Environment.TickCount64;
                using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                while (true)
                {
                    idle.CancelAfter(stall);
                    var n = await body.ReadAsync(buffer.AsMemory(0, CopyBuffer), idle.Token).ConfigureAwait(false);
                    if (n == 0)
                    {
                        break;
                    }

                    if (Offset + n > _blob.Size)
                    {
                        throw new RegistryException($"{endpoint}: {what}: more bytes than the {_blob.Size} the manifest says; refused") { ErrorCode = CorruptCode };
                    }

                    await _file.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                    _hash.AppendData(buffer, 0, n);
                    Offset += n;
                    _transferred += n;
                    if (Environment.TickCount64 - lastReport >= 100)
                    {
                        lastReport = Environment.TickCount64;
                        report(Progress(BlobState.Transferring, null));
                    }
                }

                if (Offset < _blob.Size)
                {
                    throw new IOException($"the connection ended at byte {Offset} of {_blob.Size}");
                }
            }
            finally
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        /// <summary>Whether the complete blob has its digest.</summary>
        public bool Verify() => Convert.ToHexStringLower(_hash.GetHashAndReset()) == _blob.Digest.Hex;

        /// <summary>Whether the bytes so far include some an earlier run left (not checked yet).</summary>
        public bool FromEarlierRun { get; private set; }

        public void Dispose() => _hash.Dispose();
    }
}

/// <summary>Hashes for any digest algorithm the registry may name.</summary>
internal static class DigestHashes
{
    public static System.Security.Cryptography.IncrementalHash CreateHashForDownload(this Digest digest) => digest.Algorithm switch
    {
        "sha512" => System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA512),
        "sha384" => System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA384),
        _ => System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256),
    };
}
