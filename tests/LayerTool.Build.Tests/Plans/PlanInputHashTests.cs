using LayerTool.Build.Plans;

namespace LayerTool.Build.Tests.Plans;

/// <summary>The input hash: stable, and changed by exactly the inputs it documents.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class PlanInputHashTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("layertool-plan-hash-").FullName;
    private readonly Dictionary<string, string> _noParents = [];

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private PlanImage Image(string? context = null, IReadOnlyDictionary<string, string>? args = null, string? target = null)
    {
        context ??= Path.Combine(_dir, "ctx");
        return new PlanImage("app", context, Path.Combine(context, "Dockerfile"), args ?? new Dictionary<string, string>(), target, [],
            PlanOutputs.Engine, null, [], new PlanLocation("plan.yaml", 1, 1));
    }

    private string Context(string name = "ctx")
    {
        var ctx = Path.Combine(_dir, name);
        Directory.CreateDirectory(Path.Combine(ctx, "src", "deep"));
        File.WriteAllText(Path.Combine(ctx, "Dockerfile"), "FROM busybox:latest\nCOPY . /app\n");
        File.WriteAllText(Path.Combine(ctx, "src", "main.sh"), "echo main\n");
        File.WriteAllText(Path.Combine(ctx, "src", "deep", "data.txt"), "data\n");
        File.WriteAllText(Path.Combine(ctx, ".dockerignore"), "*.log\n");
        File.SetUnixFileMode(Path.Combine(ctx, "src", "main.sh"), (UnixFileMode)0b111_101_101);
        return ctx;
    }

    private Task<string> Hash(PlanImage image, IReadOnlyDictionary<string, string>? parents = null) =>
        PlanInputHash.ComputeAsync(image, parents ?? _noParents, CancellationToken.None);

    [Fact]
    public async Task The_same_inputs_in_another_directory_with_other_times_give_the_same_hash()
    {
        var a = Context("a");
        var first = await Hash(Image(a));
        first.ShouldMatch("^sha256:[0-9a-f]{64}$");
        (await Hash(Image(a))).ShouldBe(first);
        var b = Context("b");
        foreach (var f in Directory.EnumerateFileSystemEntries(b, "*", SearchOption.AllDirectories))
            File.SetLastWriteTimeUtc(f, new DateTime(2001, 2, 3, 4, 5, 6, DateTimeKind.Utc));
        (await Hash(Image(b))).ShouldBe(first);
    }

    [Fact]
    public async Task Content_modes_names_symlinks_and_new_files_change_it_and_ignored_files_do_not()
    {
        var ctx = Context();
        var image = Image(ctx);
        var seen = new HashSet<string> { await Hash(image) };
        async Task Changed(Action change)
        {
            change();
            seen.Add(await Hash(image)).ShouldBeTrue("a change that should count left the hash as one seen before");
        }

        async Task Unchanged(Action change)
        {
            var before = await Hash(image);
            change();
            (await Hash(image)).ShouldBe(before);
        }

        await Unchanged(() => File.WriteAllText(Path.Combine(ctx, "build.log"), "ignored by .dockerignore\n"));
        await Changed(() => File.WriteAllText(Path.Combine(ctx, "src", "deep", "data.txt"), "datA\n")); // same size, other bytes
        await Changed(() => File.SetUnixFileMode(Path.Combine(ctx, "src", "main.sh"), (UnixFileMode)0b110_100_100));
        await Changed(() => File.Move(Path.Combine(ctx, "src", "deep", "data.txt"), Path.Combine(ctx, "src", "deep", "data2.txt")));
        await Changed(() => File.CreateSymbolicLink(Path.Combine(ctx, "link"), "src/main.sh"));
        await Changed(() => { File.Delete(Path.Combine(ctx, "link")); File.CreateSymbolicLink(Path.Combine(ctx, "link"), "src/deep"); });
        await Changed(() => Directory.CreateDirectory(Path.Combine(ctx, "empty")));
        await Changed(() => File.AppendAllText(Path.Combine(ctx, "Dockerfile"), "RUN true\n"));
        await Changed(() => File.AppendAllText(Path.Combine(ctx, ".dockerignore"), "src/deep\n"));
        await Unchanged(() => File.WriteAllText(Path.Combine(ctx, "src", "deep", "more.txt"), "now ignored\n"));
    }

    [Fact]
    public async Task Args_target_and_parent_digests_are_inputs()
    {
        var ctx = Context();
        var plain = await Hash(Image(ctx));
        var withArg = await Hash(Image(ctx, new Dictionary<string, string> { ["A"] = "1" }));
        withArg.ShouldNotBe(plain);
        (await Hash(Image(ctx, new Dictionary<string, string> { ["A"] = "2" }))).ShouldNotBe(withArg);
        // Names and values cannot run together: A=1B vs A1=B.
        (await Hash(Image(ctx, new Dictionary<string, string> { ["A"] = "1B" })))
            .ShouldNotBe(await Hash(Image(ctx, new Dictionary<string, string> { ["A1"] = "B" })));
        (await Hash(Image(ctx, target: "final"))).ShouldNotBe(plain);
        var parent = await Hash(Image(ctx), new Dictionary<string, string> { ["base"] = "sha256:" + new string('1', 64) });
        parent.ShouldNotBe(plain);
        (await Hash(Image(ctx), new Dictionary<string, string> { ["base"] = "sha256:" + new string('2', 64) })).ShouldNotBe(parent);
        // The order a dictionary lists things in is not an input.
        var ab = await Hash(Image(ctx, new Dictionary<string, string> { ["A"] = "1", ["B"] = "2" }));
        (await Hash(Image(ctx, new Dictionary<string, string> { ["B"] = "2", ["A"] = "1" }))).ShouldBe(ab);
    }

    [Fact]
    public async Task A_Dockerfile_outside_the_context_is_hashed_too()
    {
        var ctx = Context();
        var outside = Path.Combine(_dir, "app.Dockerfile");
        File.WriteAllText(outside, "FROM busybox:latest\n");
        var image = Image(ctx) with { Dockerfile = outside };
        var before = await Hash(image);
        File.WriteAllText(outside, "FROM busybox:1\n");
        (await Hash(image)).ShouldNotBe(before);
    }

    [Fact]
    public async Task It_is_cancelled_between_entries()
    {
        var ctx = Context();
        using var cancel = new CancellationTokenSource();
        await cancel.CancelAsync();
        await Should.ThrowAsync<OperationCanceledException>(() => PlanInputHash.ComputeAsync(Image(ctx), _noParents, cancel.Token));
    }

    [Fact]
    public async Task A_missing_context_is_a_build_error()
    {
        var e = await Should.ThrowAsync<BuildException>(() => Hash(Image(Path.Combine(_dir, "none"))));
        e.Message.ShouldContain("none");
    }
}
