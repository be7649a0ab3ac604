using System.Diagnostics;
using LayerTool.Docker;
using LayerTool.Build.Dind;
using LayerTool.Docker.Dind;
using LayerTool.Dockerfile.Model;

namespace LayerTool.Build.Dind;

/// <summary>The timings of a <c>build --dind</c>, next to the build's own result.</summary>
public sealed record DindBuildResult(
    BuildResult Build,
    DindIsolation Isolation,
    TimeSpan Start,
    TimeSpan Provide,
    TimeSpan BuildTime,
    TimeSpan BringBack,
    TimeSpan Cleanup,
    IReadOnlyList<string> BroughtBack);

/// <summary>
/// <c>layertool build --dind</c>: the same build, run against a throw-away dind engine. The base images
/// the Dockerfile names come from the outer engine (the inner one pulls what the outer lacks); the final
/// image, its tags and every TAG'd image go back to the outer engine; the container and its volume are
/// removed whatever happens.
/// </summary>
public static class DindBuild
{
    /// <param name="outer">The engine that keeps the results.</param>
    /// <param name="dind">How to start the build container.</param>
    /// <param name="options">The build; RUN uses the host network unless it names one (the inner daemon has no bridge).</param>
    /// <param name="build">Runs the build against the engine it is given (the CLI builds the executor).</param>
    /// <param name="log">Progress lines.</param>
    /// <param name="cancellationToken">Cancels the build; cleanup still runs.</param>
    public static async Task<DindBuildResult> BuildAsync(DockerConnection outer, DindOptions dind, BuildOptions options,
        Func<DockerConnection, BuildOptions, CancellationToken, Task<BuildResult>> build, IProgress<string>? log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(build);
        var dockerfile = options.DockerfilePath ?? Path.Combine(options.ContextDirectory, "Dockerfile");
        var text = await File.ReadAllTextAsync(dockerfile, cancellationToken).ConfigureAwait(false);
        var bases = DindBaseImages.Of(DockerfileModel.Parse(text, dockerfile), options.BuildArgs);
        var inside = options with { NetworkMode = options.NetworkMode ?? "host" };

        var watch = Stopwatch.StartNew();
        var session = await DindSession.StartAsync(outer, dind, log, cancellationToken).ConfigureAwait(false);
        TimeSpan start = watch.Elapsed, provide, buildTime, bringBack;
        BuildResult result;
        IReadOnlyList<string> broughtBack;
        try
        {
            watch.Restart();
            var provided = await session.ProvideImagesAsync(bases, cancellationToken).ConfigureAwait(false);
            provide = watch.Elapsed;
            if (provided.Sent.Count > 0) log?.Report($"dind: gave the build {string.Join(", ", provided.Sent)} in {provide.TotalSeconds:0.0}s");
            if (provided.MissingAtSource.Count > 0) log?.Report($"dind: not in this engine, left for the dind engine to pull: {string.Join(", ", provided.MissingAtSource)}");

            watch.Restart();
            result = await build(session.Inner, inside, cancellationToken).ConfigureAwait(false);
            buildTime = watch.Elapsed;

            watch.Restart();
            var wanted = new List<string>();
            wanted.AddRange(result.Tags);
            wanted.AddRange(result.TaggedImages.Select(t => t.Reference));
            // An untagged result comes back by its ID (the same ID: it is the config's digest).
            if (result.Tags.Count == 0) wanted.Add(result.ImageId);
            var back = await session.BringBackAsync(wanted, cancellationToken).ConfigureAwait(false);
            bringBack = watch.Elapsed;
            broughtBack = [.. back.Sent, .. back.AlreadyThere];
            log?.Report($"dind: brought back {string.Join(", ", broughtBack)} in {bringBack.TotalSeconds:0.0}s");
        }
        finally
        {
            watch.Restart();
            await session.DisposeAsync().ConfigureAwait(false);
        }
        return new DindBuildResult(result, session.Isolation, start, provide, buildTime, bringBack, watch.Elapsed, broughtBack);
    }
}
