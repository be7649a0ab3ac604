using LayerTool.Image.Squash;
using LayerTool.Image;
using System.Globalization;
using LayerTool.Docker;
using LayerTool.Docker.Squash;

namespace LayerTool.Build.Planning;

/// <summary>
/// Runs a <see cref="BuildPlan"/>: standard builds through an <see cref="IBuildBackend"/>, squashes through the
/// <see cref="ISquashService"/>, ONBUILD edits through config-only loads. Whatever happens (success, a failed
/// step, cancellation), every temporary tag of the plan is removed before <see cref="RunAsync"/> returns or throws;
/// only TAG'd images and the final image stay.
/// </summary>
/// <param name="backend">Runs the standard builds.</param>
/// <param name="squash">Squashes for COMPRESS and --squash.</param>
/// <param name="engine">Inspects, tags, removes images and loads config-only copies.</param>
/// <param name="log">Where the plan's own lines go (step headers, COMPRESS figures); null: nowhere.</param>
public sealed class BuildPlanRunner(IBuildBackend backend, ISquashService squash, IDockerEngine engine, BuildLog? log = null)
{
    private readonly IBuildBackend _backend = backend ?? throw new ArgumentNullException(nameof(backend));
    private readonly ISquashService _squash = squash ?? throw new ArgumentNullException(nameof(squash));
    private readonly IDockerEngine _engine = engine ?? throw new ArgumentNullException(nameof(engine));

    /// <summary>Pull the base a build records (<see cref="StandardBuild.RecordBaseOf"/>) even when the engine has it
    /// (<c>--pull</c>), so that the digest recorded is the one the build then uses.</summary>
    public bool PullBases { get; init; }

    /// <summary>How long the clean-up may take once the build has ended (it runs even after a cancellation).</summary>
    public TimeSpan CleanupTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Runs every step in order; returns the final image, the TAG'd images and the COMPRESS figures.</summary>
    public async Task<BuildResult> RunAsync(BuildPlan plan, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(plan);
        if (plan.Steps.Count == 0) throw new ArgumentException("the plan has no step", nameof(plan));
        var ids = new string?[plan.Steps.Count];
        var tagged = new List<TaggedImage>();
        var compressions = new List<CompressedImage>();
        var steps = 0;
        var cached = 0;
        var succeeded = false;
        try
        {
            foreach (var step in plan.Steps)
            {
                cancellationToken.ThrowIfCancellationRequested();
                log?.Line($"[plan {step.Index + 1}/{plan.Steps.Count}] {step.Description}");
                switch (step)
                {
                    case PlanBuild b:
                    {
                        var build = b.Build.RecordBaseOf is { } recorded ? await WithBaseLabelsAsync(b.Build, recorded, cancellationToken).ConfigureAwait(false) : b.Build;
                        StandardBuildResult r;
                        try
                        {
                            r = await _backend.BuildAsync(build, cancellationToken).ConfigureAwait(false);
                        }
                        catch (BuildException) when (!cancellationToken.IsCancellationRequested)
                        {
                            await TagWhatRanBeforeTheFailureAsync(plan, b, tagged, cancellationToken).ConfigureAwait(false);
                            throw;
                        }
                        ids[step.Index] = r.ImageId;
                        if (b.ReplayOf is null)
                        {
                            steps += r.Steps;
                            cached += r.CachedSteps;
                        }
                        break;
                    }
                    case PlanSquash s:
                    {
                        var (id, compressed) = await SquashAsync(plan, s, ids, cancellationToken).ConfigureAwait(false);
                        ids[step.Index] = id;
                        compressions.Add(compressed);
                        steps++;
                        break;
                    }
                    case PlanConfig c:
                        ids[step.Index] = await ConfigAsync(c, ids, cancellationToken).ConfigureAwait(false);
                        break;
                    default:
                        throw new InvalidOperationException($"unknown plan step {step.GetType().Name}");
                }
                if (step.Output == PlanOutput.Tag)
                {
                    foreach (var reference in step.Tags.Where(t => !plan.IsTemporary(t)))
                    {
                        tagged.Add(new TaggedImage(reference, ids[step.Index]!, step.Line ?? 0));
                        log?.Line($" ---> Tagged {BuildLog.ShortId(ids[step.Index]!)} as {reference}");
                    }
                }
            }
            succeeded = true;
            var final = ids[plan.FinalStep]!;
            return new BuildResult(final, plan.Tags, tagged, compressions, steps, cached);
        }
        finally
        {
            await CleanupAsync(plan, succeeded ? ids[plan.FinalStep] : null).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// After <paramref name="failed"/> failed: the TAGs that were to replay its fresh cache (under <c>--no-cache</c>) and
    /// whose steps ran before the failure are built from the cache all the same, as the TAG would have been tagged had
    /// it run first; one whose steps did not all run is stopped before anything runs, and left out.
    /// </summary>
    private async Task TagWhatRanBeforeTheFailureAsync(BuildPlan plan, PlanBuild failed, List<TaggedImage> tagged, CancellationToken ct)
    {
        foreach (var replay in plan.Steps.OfType<PlanBuild>().Where(p => p.ReplayOf == failed.Index))
        {
            try
            {
                var r = await _backend.BuildAsync(replay.Build with { OnlyFromCache = true }, ct).ConfigureAwait(false);
                foreach (var reference in replay.Tags)
                {
                    tagged.Add(new TaggedImage(reference, r.ImageId, replay.Line ?? 0));
                    log?.Line($" ---> Tagged {BuildLog.ShortId(r.ImageId)} as {reference} (its steps ran before the failure)");
                }
            }
            catch (BuildException)
            {
                // Its steps did not all run before the failure: no TAG, as the build never reached it.
            }
            catch (EngineException) when (!ct.IsCancellationRequested)
            {
                // The engine is gone as well: the build's own failure is what the user hears of.
            }
        }
    }

    /// <summary>
    /// <paramref name="build"/> with the <see cref="BaseLabels"/> of <paramref name="recorded"/> added (pulled first when the
    /// engine lacks it, as the backend would). Any backend gets them as ordinary labels; only the final build carries them,
    /// as a label changes the image ID.
    /// </summary>
    private async Task<StandardBuild> WithBaseLabelsAsync(StandardBuild build, string recorded, CancellationToken ct)
    {
        var image = PullBases ? null : await _engine.InspectImageAsync(recorded, ct).ConfigureAwait(false);
        if (image is null)
        {
            try
            {
                var tagged = recorded.Contains('@', StringComparison.Ordinal) || recorded.LastIndexOf(':') > recorded.LastIndexOf('/') ? recorded : recorded + ":latest";
                await _engine.PullImageAsync(tagged, null, ct).ConfigureAwait(false);
            }
            catch (EngineException e) when (!ct.IsCancellationRequested)
            {
                throw new BuildException($"cannot get base image {recorded}: {e.Message}", e);
            }

            image = await _engine.InspectImageAsync(recorded, ct).ConfigureAwait(false)
                    ?? throw new BuildException($"base image {recorded} is still missing after the pull");
        }

        return build with { Labels = BaseLabels.Merge(build.Labels, BaseLabels.For(recorded, image)) };
    }

    private async Task<(string Id, CompressedImage Compressed)> SquashAsync(BuildPlan plan, PlanSquash step, string?[] ids, CancellationToken ct)
    {
        var what = step.Line is { } line ? $"{plan.FileName}:{line.ToString(CultureInfo.InvariantCulture)}: COMPRESS" : "--squash";
        var image = Resolve(step.Image, ids)!;
        var baseRef = Resolve(step.Base, ids);
        if (step.Base.Reference is { } named && await _engine.InspectImageAsync(named, ct).ConfigureAwait(false) is null)
            throw new BuildException($"{what} base {named} is neither a stage, a TAG of this build nor an image the engine has");
        SquashResult result;
        try
        {
            result = await _squash.SquashAsync(SquashRequest.OnEngine(image, baseRef, step.Tags) with { Message = $"layertool {(step.Line is null ? "--squash" : "COMPRESS")} onto {step.BaseDescription}" },
                null, ct).ConfigureAwait(false);
        }
        catch (EngineException e) when (!ct.IsCancellationRequested)
        {
            throw new BuildException($"{what} failed: {e.Message}", e);
        }
        log?.Line($" ---> Compressed {result.LayersBefore} layers ({result.BytesBefore} bytes) into {result.LayersAfter} ({result.BytesAfter} bytes)");
        return (result.ImageId, new CompressedImage(result.ImageId, baseRef, result.LayersBefore, result.LayersAfter, result.BytesBefore, result.BytesAfter, step.Line ?? 0));
    }

    private async Task<string> ConfigAsync(PlanConfig step, string?[] ids, CancellationToken ct)
    {
        var imageRef = Resolve(step.Image, ids)!;
        var image = await _engine.InspectImageAsync(imageRef, ct).ConfigureAwait(false)
            ?? throw new BuildException($"the image of step {step.Image} ({imageRef}) is gone from the engine");
        IReadOnlyList<string>? wanted;
        if (step.Kind == PlanStepKind.ClearOnBuild)
        {
            wanted = null;
        }
        else
        {
            var fromRef = Resolve(step.OnBuildFrom ?? throw new InvalidOperationException("a RestoreOnBuild step names where the triggers come from"), ids)!;
            var from = await _engine.InspectImageAsync(fromRef, ct).ConfigureAwait(false)
                ?? throw new BuildException($"the image of step {step.OnBuildFrom} ({fromRef}) is gone from the engine");
            wanted = [.. from.Config.OnBuild ?? [], .. image.Config.OnBuild ?? []];
        }
        var current = image.Config.OnBuild ?? [];
        if (current.SequenceEqual(wanted ?? [], StringComparer.Ordinal))
        {
            // Nothing to change: the image itself, under the step's tags.
            foreach (var tag in step.Tags)
                await _engine.TagImageAsync(image.Id, tag, ct).ConfigureAwait(false);
            return image.Id;
        }
        try
        {
            var id = await _engine.ReplaceOnBuildAsync(image.Id, wanted is { Count: > 0 } ? wanted : null, step.Tags, ct).ConfigureAwait(false);
            log?.Line($" ---> {(wanted is null ? "ONBUILD triggers withheld" : $"{wanted.Count} ONBUILD trigger(s)")}: {BuildLog.ShortId(id)}");
            return id;
        }
        catch (EngineException e) when (!ct.IsCancellationRequested)
        {
            throw new BuildException($"{step.Description}: {e.Message}", e);
        }
    }

    private static string? Resolve(PlanImage image, string?[] ids) =>
        image.Step is { } s ? ids[s] ?? throw new InvalidOperationException($"step {s} has no image yet") : image.Reference;

    /// <summary>
    /// Removes every temporary tag (and with it every intermediate image nothing else names). After a failure or
    /// a cancellation it looks twice: a build the engine was finishing may tag its result just after.
    /// </summary>
    private async Task CleanupAsync(BuildPlan plan, string? finalId)
    {
        using var timeout = new CancellationTokenSource(CleanupTimeout);
        var pending = plan.TemporaryTags.ToList();
        var left = new List<string>();
        var kept = new List<string>();
        for (var pass = 0; pass < (finalId is null ? 2 : 1); pass++)
        {
            left.Clear();
            try
            {
                if (pass > 0) await Task.Delay(TimeSpan.FromMilliseconds(500), timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                left.AddRange(pending);
                break;
            }
            foreach (var tag in pending)
            {
                try
                {
                    if (finalId is not null && plan.Tags.Count == 0
                        && (await _engine.InspectImageAsync(tag, timeout.Token).ConfigureAwait(false))?.Id == finalId)
                    {
                        // The final image is this intermediate one and has no other name: removing the tag would delete it.
                        kept.Add(tag);
                        continue;
                    }
                    await _engine.RemoveImageAsync(tag, timeout.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is EngineException or OperationCanceledException)
                {
                    left.Add(tag);
                }
            }
        }
        if (kept.Count > 0)
            log?.Line($"[Warning] the final image has no -t tag and is the same image as an intermediate step; it keeps the name {string.Join(' ', kept)}");
        if (left.Count > 0)
            log?.Line($"[Warning] could not remove the temporary tag{(left.Count == 1 ? "" : "s")} {string.Join(' ', left)}; remove with: docker rmi {string.Join(' ', left)}");
    }
}
