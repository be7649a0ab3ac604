using System.Diagnostics;

namespace LayerTool.Docker.Dind;

/// <summary>
/// A command to run on this machine against a throw-away dind engine: the images it needs are copied
/// in first, the images it makes are copied back after it succeeded, and the container goes away in
/// every case.
/// </summary>
/// <param name="Command">Program and arguments; it gets <c>DOCKER_HOST</c> set to the inner engine.</param>
/// <param name="ProvideImages">Images copied from the outer engine before the command runs.</param>
/// <param name="BringBackImages">Images copied back to the outer engine after it exited 0.</param>
public sealed record DindJob(IReadOnlyList<string> Command, IReadOnlyList<string> ProvideImages, IReadOnlyList<string> BringBackImages);

/// <summary>What a <see cref="DindJob"/> did, with the time each phase took.</summary>
public sealed record DindJobResult(
    int ExitCode,
    DindIsolation Isolation,
    TimeSpan Start,
    TimeSpan Provide,
    TimeSpan Command,
    TimeSpan BringBack,
    TimeSpan Cleanup,
    IReadOnlyList<string> BroughtBack);

public static class DindJobRunner
{
    public static async Task<DindJobResult> RunAsync(DockerConnection outer, DindOptions options, DindJob job, IProgress<string>? log,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        if (job.Command.Count == 0) throw new ArgumentException("a dind job needs a command", nameof(job));
        var watch = Stopwatch.StartNew();
        var session = await DindSession.StartAsync(outer, options, log, cancellationToken).ConfigureAwait(false);
        TimeSpan start = watch.Elapsed, provide = TimeSpan.Zero, command = TimeSpan.Zero, bringBack = TimeSpan.Zero;
        var exitCode = -1;
        IReadOnlyList<string> broughtBack = [];
        try
        {
            watch.Restart();
            var provided = await session.ProvideImagesAsync(job.ProvideImages, cancellationToken).ConfigureAwait(false);
            provide = watch.Elapsed;
            if (provided.Sent.Count > 0) log?.Report($"copied {string.Join(", ", provided.Sent)} into the dind engine in {provide.TotalSeconds:0.0}s");
            if (provided.MissingAtSource.Count > 0) log?.Report($"not in the outer engine (the dind engine may pull them): {string.Join(", ", provided.MissingAtSource)}");

            watch.Restart();
            exitCode = await RunCommandAsync(job.Command, session.InnerEndpoint, cancellationToken).ConfigureAwait(false);
            command = watch.Elapsed;
            if (exitCode == 0 && job.BringBackImages.Count > 0)
            {
                watch.Restart();
                var back = await session.BringBackAsync(job.BringBackImages, cancellationToken).ConfigureAwait(false);
                bringBack = watch.Elapsed;
                broughtBack = [.. back.Sent, .. back.AlreadyThere];
                log?.Report($"brought back {string.Join(", ", broughtBack)} in {bringBack.TotalSeconds:0.0}s");
            }
        }
        finally
        {
            watch.Restart();
            await session.DisposeAsync().ConfigureAwait(false);
        }
        return new DindJobResult(exitCode, session.Isolation, start, provide, command, bringBack, watch.Elapsed, broughtBack);
    }

    private static async Task<int> RunCommandAsync(IReadOnlyList<string> command, Uri endpoint, CancellationToken cancellationToken)
    {
        var psi = new ProcessStartInfo(command[0]) { UseShellExecute = false };
        foreach (var a in command.Skip(1)) psi.ArgumentList.Add(a);
        psi.Environment["DOCKER_HOST"] = endpoint.ToString();
        psi.Environment.Remove("DOCKER_CONTEXT");
        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new EngineException($"cannot start {command[0]}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new EngineException($"cannot start {command[0]}: {e.Message}", e);
        }
        using (process)
        {
            try
            {
                await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw;
            }
            return process.ExitCode;
        }
    }
}
