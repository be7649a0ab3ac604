using System.Text;
using LayerTool.Docker.Overlay2;
using LayerTool.Docker.Sweep;
using LayerTool.Image.Formats;
using Microsoft.Win32.SafeHandles;

namespace LayerTool.Docker.Squash;

/// <summary>
/// The named pipe a piped load feeds the new layer through. <c>docker load</c> (graph-driver store) first
/// unpacks the whole upload into <c>&lt;data root&gt;/tmp/docker-import-*</c>, then reads each layer it lacks
/// from there; a layer sent as a FIFO member (<see cref="StreamedDockerArchive.PipedHead"/>) becomes a pipe in
/// that directory, and the engine applies the layer as it is written into the pipe: no temp copy of the layer,
/// and the engine's work overlaps LayerTool's. The engine checks the layer it read against the diffID in the
/// config it was sent, so a pipe closed early, or other bytes, load nothing.
/// </summary>
internal static class LoadPipe
{
    /// <summary>How long to wait for the pipe when no load has started unpacking in the engine's temp directory
    /// since the upload began: an engine that unpacks there makes its import directory on the first bytes.</summary>
    internal static readonly TimeSpan NoImportWait = TimeSpan.FromSeconds(1);

    /// <summary>A name for this squash's pipe directory: <c>layertool-ID</c>, unique, with the ID naming the process that
    /// feeds it (<see cref="ProcessOwner.NewId"/>), so that <see cref="Sweeper.ReleasePipes"/> can tell a pipe whose
    /// process is gone.</summary>
    public static string NewDirectoryName() => "layertool-" + ProcessOwner.NewId();

    /// <summary>The engine's import directories now (names), to tell the ones that appear later.</summary>
    public static HashSet<string> Imports(string engineTemp)
    {
        try
        {
            return [.. Directory.EnumerateDirectories(engineTemp, "docker-import-*").Select(Path.GetFileName).OfType<string>()];
        }
        catch (IOException)
        {
            return [];
        }
    }

    /// <summary>
    /// The path of the pipe the engine unpacked from an archive begun with <c>PipedHead(directory)</c>; null when
    /// the load has ended, or the pipe has not appeared within <paramref name="wait"/> from now, or
    /// <see cref="NoImportWait"/> after <paramref name="uploadStarted"/> no import directory other than
    /// <paramref name="before"/> (those there before the upload began) has appeared either: the engine unpacks
    /// elsewhere (<c>DOCKER_TMPDIR</c>).
    /// </summary>
    public static async Task<string?> FindAsync(string engineTemp, string directory, IReadOnlySet<string> before, DateTime uploadStarted, Task loading,
        TimeSpan wait, CancellationToken cancellationToken)
    {
        var start = DateTime.UtcNow;
        var importSeen = false;
        while (true)
        {
            try
            {
                foreach (var import in Directory.EnumerateDirectories(engineTemp, "docker-import-*"))
                {
                    var path = Path.Combine(import, StreamedDockerArchive.PipedLayerPath(directory));
                    if (NativeFs.Lstat(NativeFs.Z(Encoding.UTF8.GetBytes(path))) is { IsFifo: true }) return path;
                    importSeen |= !before.Contains(Path.GetFileName(import));
                }
            }
            catch (IOException)
            {
                // An import directory removed while listed (another load ended), or the temp directory itself
                // gone (the engine restarted): look again, until the deadline.
            }
            var now = DateTime.UtcNow;
            if (loading.IsCompleted || now - start > wait || (!importSeen && now - uploadStarted > NoImportWait)) return null;
            await Task.Delay(2, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Opens the pipe for writing once the engine has opened it for reading (it does when it reaches the layer);
    /// null when the load ended first (it failed before the layer). <paramref name="loading"/> must be the load
    /// request, not cancelled from here on: its end is how the engine says it will not open the pipe.
    /// Cancellation does not stop the wait: once the config has gone out the engine will open the pipe, and
    /// an engine that opens a pipe nobody writes to waits for ever. A cancelled call opens the pipe all the
    /// same, closes it at once (the engine reads an empty layer, which fails its diffID: nothing is loaded)
    /// and throws.
    /// </summary>
    public static async Task<Stream?> OpenWriterAsync(string path, Task loading, CancellationToken cancellationToken)
    {
        var zpath = NativeFs.Z(Encoding.UTF8.GetBytes(path));
        while (true)
        {
            var handle = NativeFs.TryOpenPipeWriter(zpath, out var errno);
            if (handle is not null)
            {
                if (cancellationToken.IsCancellationRequested)
                {
                    handle.Dispose();
                    cancellationToken.ThrowIfCancellationRequested();
                }
                return Writer(handle);
            }
            if (errno == NativeFs.Enoent || loading.IsCompleted) return null; // the load is over
            if (errno != NativeFs.Enxio) throw new IOException($"cannot open the load's pipe {path} (errno {errno})");
            await Task.Delay(1, CancellationToken.None).ConfigureAwait(false);
        }
    }

    private static FileStream Writer(SafeFileHandle pipe)
    {
        // A 1 MiB pipe buffer (the default is 64 KiB): the engine and LayerTool wake each other far less often.
        // Refused above /proc/sys/fs/pipe-max-size for an unprivileged process; the default then serves.
        NativeFs.TrySetPipeSize(pipe, 1 << 20);
        return new FileStream(pipe, FileAccess.Write, 1 << 16, isAsync: false);
    }
}
