using LayerTool.Image.Squash;
using LayerTool.Image;
using LayerTool.Docker;
using LayerTool.Build.Execution;
using LayerTool.Docker.Squash;
using LayerTool.Docker.Images;

namespace LayerTool.Build.Tests;

public sealed class BuildExecutorTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("lt-build-").FullName;
    private readonly FakeEngine _engine = new();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private void Write(string path, string text)
    {
        var full = Path.Combine(_dir, path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        File.WriteAllText(full, text);
    }

    private async Task<(BuildResult Result, string Output)> BuildAsync(string dockerfile, BuildOptions? options = null, ISquashService? squash = null,
        CancellationToken ct = default)
    {
        Write("Dockerfile", dockerfile);
        var output = new StringWriter();
        var executor = new BuildExecutor(_engine, squash, null, options ?? new BuildOptions(_dir), new BuildLog(output, ProgressMode.Plain, false));
        var result = await executor.BuildAsync(ct);
        return (result, output.ToString());
    }

    private ContainerConfig ConfigOf(string id) => _engine.Images[id].Config;

    [Fact]
    public async Task Metadata_instructions_give_the_config_docker_gives()
    {
        var (r, _) = await BuildAsync("""
            FROM busybox
            ENV A=1 B="two words"
            ENV C=$A-x
            LABEL l1=v1 "l 2"="v 2"
            EXPOSE 80 53/udp 8000-8001
            VOLUME /data ["/json"]
            USER user
            WORKDIR /app
            WORKDIR sub
            STOPSIGNAL SIGQUIT
            HEALTHCHECK --interval=5s --retries=2 CMD true
            ONBUILD RUN echo hi
            """);
        var c = ConfigOf(r.ImageId);
        c.Env.ShouldBe(["PATH=/bin", "A=1", "B=two words", "C=1-x"]);
        c.Labels!["l1"].ShouldBe("v1");
        c.Labels["l 2"].ShouldBe("v 2");
        c.ExposedPorts.ShouldBe(["53/udp", "80/tcp", "8000/tcp", "8001/tcp"], ignoreOrder: true);
        c.User.ShouldBe("user");
        c.WorkingDir.ShouldBe("/app/sub");
        c.StopSignal.ShouldBe("SIGQUIT");
        c.Healthcheck!.Test.ShouldBe(["CMD-SHELL", "true"]);
        c.Healthcheck.Interval.ShouldBe(TimeSpan.FromSeconds(5));
        c.Healthcheck.Retries.ShouldBe(2);
        c.OnBuild.ShouldBe(["RUN echo hi"]);
        c.Cmd.ShouldBe(["sh"]);
    }

    [Fact]
    public async Task Entrypoint_resets_an_inherited_cmd_but_not_one_of_this_stage()
    {
        var (r1, _) = await BuildAsync("FROM busybox\nENTRYPOINT [\"echo\"]\n");
        ConfigOf(r1.ImageId).Cmd.ShouldBeNull();
        ConfigOf(r1.ImageId).Entrypoint.ShouldBe(["echo"]);
        var (r2, _) = await BuildAsync("FROM busybox\nCMD [\"a\"]\nENTRYPOINT echo x\n");
        ConfigOf(r2.ImageId).Cmd.ShouldBe(["a"]);
        ConfigOf(r2.ImageId).Entrypoint.ShouldBe(["/bin/sh", "-c", "echo x"]);
    }

    [Fact]
    public async Task Shell_changes_the_shell_form_of_run_and_cmd()
    {
        var (r, _) = await BuildAsync("FROM busybox\nSHELL [\"/bin/bash\", \"-ec\"]\nRUN echo hi\nCMD run me\n");
        ConfigOf(r.ImageId).Cmd.ShouldBe(["/bin/bash", "-ec", "run me"]);
        _engine.Created.ShouldContain(c => c.Config.Cmd != null && c.Config.Cmd.SequenceEqual(new[] { "/bin/bash", "-ec", "echo hi" }));
    }

    [Fact]
    public async Task Build_args_reach_run_through_the_container_env_and_never_the_image_env()
    {
        var (r, _) = await BuildAsync("FROM busybox\nARG V=default\nARG W\nENV SHADOW=env\nARG SHADOW=arg\nRUN echo $V\nRUN [\"env\"]\n",
            new BuildOptions(_dir, BuildArgs: new Dictionary<string, string> { ["W"] = "from-cli", ["http_proxy"] = "http://proxy" }));
        var shell = _engine.Created.Single(c => c.Config.Cmd?.Contains("echo $V") == true);
        shell.Config.Cmd.ShouldBe(["/bin/sh", "-c", "echo $V"]);
        shell.Config.Env.ShouldBe(["PATH=/bin", "SHADOW=env", "V=default", "W=from-cli", "http_proxy=http://proxy"]);
        var exec = _engine.Created.Single(c => c.Config.Cmd is ["env"]);
        exec.Config.Env.ShouldBe(shell.Config.Env);

        // Each commit gained the args; each was replaced by an image with the stage's env and docker's history
        // line (the proxy arg, not declared, is in the environment but not in the line).
        _engine.Replacements.Select(x => x.CreatedBy).ShouldBe([
            ["|2", "V=default", "W=from-cli", "/bin/sh", "-c", "echo $V"],
            ["|2", "V=default", "W=from-cli", "env"],
        ]);
        _engine.Replacements.ShouldAllBe(x => x.Env.SequenceEqual(new[] { "PATH=/bin", "SHADOW=env" }));
        ConfigOf(r.ImageId).Env.ShouldBe(["PATH=/bin", "SHADOW=env"]);
    }

    [Fact]
    public async Task An_engine_that_cannot_take_the_replacement_gets_build_args_through_the_shell()
    {
        _engine.CanReplace = false;
        var (r, _) = await BuildAsync("FROM busybox\nARG V=\"it's\"\nRUN echo $V\nRUN [\"env\"]\n");
        _engine.Created.Single(c => c.Config.Cmd?.Count == 3).Config.Cmd![^1].ShouldBe("export V='it'\\''s'; echo $V");
        _engine.Created.ShouldAllBe(c => (c.Config.Env ?? Array.Empty<string>()).SequenceEqual(new[] { "PATH=/bin" }));
        _engine.Replacements.ShouldBeEmpty();
        ConfigOf(r.ImageId).Env.ShouldBe(["PATH=/bin"]);
    }

    [Fact]
    public async Task A_run_without_build_args_keeps_its_commit()
    {
        await BuildAsync("FROM busybox\nARG UNSET\nRUN true\n");
        _engine.Replacements.ShouldBeEmpty();
        _engine.Created.Last().Config.Env.ShouldBe(["PATH=/bin"]);
    }

    [Fact]
    public async Task An_image_without_cmd_or_entrypoint_runs_the_step_as_entrypoint_and_commits_an_empty_one()
    {
        _engine.AddImage("bare:latest", new ContainerConfig { Env = ["PATH=/bin"] });
        var (r, _) = await BuildAsync("FROM bare\nRUN touch /x\n");
        var run = _engine.Created.Last();
        run.Config.Entrypoint.ShouldBe(["/bin/sh", "-c", "touch /x"]);
        run.Config.Cmd.ShouldBeNull();
        ConfigOf(r.ImageId).Entrypoint.ShouldBe([]);
        ConfigOf(r.ImageId).Cmd.ShouldBeNull();
    }

    [Fact]
    public async Task Every_commit_sends_the_whole_config()
    {
        await BuildAsync("FROM busybox\nENV A=1\nLABEL x=y\nRUN true\n");
        var last = _engine.Commits[^1].Config;
        last.Env.ShouldBe(["PATH=/bin", "A=1"]);
        last.Labels!["x"].ShouldBe("y");
        last.Cmd.ShouldBe(["sh"]);
    }

    [Fact]
    public async Task A_failing_run_names_the_line_and_the_command_removes_its_containers_and_tags_nothing()
    {
        _engine.ExitCodeFor = cmd => cmd.Any(c => c.Contains("false", StringComparison.Ordinal)) ? 3 : 0;
        var e = await Should.ThrowAsync<BuildException>(() => BuildAsync("FROM busybox\nRUN true\nRUN false\nTAG never:tagged\n",
            new BuildOptions(_dir, Tags: ["final:tag"])));
        e.Message.ShouldBe("Dockerfile:3: The command '/bin/sh -c false' returned a non-zero code: 3");
        _engine.Containers.ShouldBeEmpty();
        _engine.Tags.Keys.ShouldNotContain("final:tag");
        _engine.Tags.Keys.ShouldNotContain("never:tagged");
    }

    [Fact]
    public async Task Cancelling_in_the_middle_of_a_run_removes_the_container()
    {
        using var cts = new CancellationTokenSource();
        _engine.BlockWait = new TaskCompletionSource();
        _engine.OnStart = _ => cts.CancelAfter(50);
        await Should.ThrowAsync<OperationCanceledException>(() => BuildAsync("FROM busybox\nRUN sleep 100\n", ct: cts.Token));
        _engine.Containers.ShouldBeEmpty();
    }

    [Fact]
    public async Task A_missing_base_image_is_an_error_on_the_from_line_and_leaves_nothing()
    {
        var e = await Should.ThrowAsync<BuildException>(() => BuildAsync("FROM nothere:1\nRUN true\n"));
        e.Message.ShouldStartWith("Dockerfile:1: cannot get base image nothere:1");
        _engine.Containers.ShouldBeEmpty();
    }

    [Fact]
    public async Task Tag_tags_the_image_of_the_step_before_it()
    {
        var (r, output) = await BuildAsync("FROM busybox\nENV A=1\nTAG mid:one mid:two\nENV B=2\n");
        var mid = _engine.Tags["mid:one"];
        _engine.Tags["mid:two"].ShouldBe(mid);
        ConfigOf(mid).Env.ShouldBe(["PATH=/bin", "A=1"]);
        r.ImageId.ShouldNotBe(mid);
        r.TaggedImages.Select(t => t.Reference).ShouldBe(["mid:one", "mid:two"]);
        output.ShouldContain("Tagged");
    }

    [Fact]
    public async Task Compress_squashes_onto_the_from_image_and_continues_from_the_result()
    {
        var squash = new FakeSquash(_engine);
        var (r, _) = await BuildAsync("FROM busybox\nRUN a\nRUN b\nCOMPRESS\nENV AFTER=1\n", squash: squash);
        squash.Requests.Single().Base!.ToString().ShouldBe(_engine.Tags["busybox:latest"]);
        var squashed = squash.Results.Single();
        _engine.Images[r.ImageId].DiffIds.Take(2).ShouldBe(_engine.Images[squashed].DiffIds);
        r.Compressions.Single().LayersAfter.ShouldBe(2);
    }

    [Fact]
    public async Task Compress_may_name_an_earlier_tag_or_stage()
    {
        var squash = new FakeSquash(_engine);
        await BuildAsync("FROM busybox AS base\nRUN a\nFROM base\nRUN b\nTAG here\nRUN c\nCOMPRESS here\nCOMPRESS base\n", squash: squash);
        squash.Requests[0].Base!.ToString().ShouldBe(_engine.Tags["here"]);
        squash.Requests[1].Base!.ToString().ShouldNotBe(_engine.Tags["busybox:latest"]);
    }

    [Fact]
    public async Task Without_a_squash_engine_compress_is_a_clear_error()
    {
        var e = await Should.ThrowAsync<BuildException>(() => BuildAsync("FROM busybox\nRUN a\nCOMPRESS\n"));
        e.Message.ShouldContain("Dockerfile:3: COMPRESS needs the squash engine");
    }

    [Fact]
    public async Task Target_builds_only_the_stages_it_needs()
    {
        var (_, output) = await BuildAsync("FROM busybox AS a\nRUN echo a\nFROM busybox AS unused\nRUN echo unused\nFROM a AS t\nCOPY --from=a /tmp /y\nFROM t\nRUN echo after\n",
            new BuildOptions(_dir, Target: "t"));
        output.ShouldNotContain("echo unused");
        output.ShouldNotContain("echo after");
        output.ShouldContain("Step 4/4 : COPY --from=a /tmp /y");
    }

    [Fact]
    public async Task Copy_resolves_chown_names_in_the_image_and_creates_missing_parents_owned_by_them()
    {
        Write("a.txt", "a");
        await BuildAsync("FROM busybox\nCOPY --chown=user:staff a.txt /new/dir/\n");
        var upload = _engine.Uploads.Single();
        upload.Entries.ShouldBe(["new Directory 1000:50", "new/dir Directory 1000:50", "new/dir/a.txt RegularFile 1000:50"]);
    }

    [Fact]
    public async Task Copy_of_a_directory_copies_its_contents_after_dockerignore()
    {
        Write("d/keep", "k");
        Write("d/skip.o", "s");
        Write("d/sub/x", "x");
        Write(".dockerignore", "**/*.o\n");
        await BuildAsync("FROM busybox\nCOPY d /tmp/\n");
        _engine.Uploads.Single().Entries.ShouldBe(["tmp/keep RegularFile 0:0", "tmp/sub Directory 0:0", "tmp/sub/x RegularFile 0:0"]);
    }

    [Fact]
    public async Task A_path_or_symlink_leaving_the_context_is_refused()
    {
        var e = await Should.ThrowAsync<BuildException>(() => BuildAsync("FROM busybox\nCOPY ../outside /x\n"));
        e.Message.ShouldContain("forbidden path outside the build context");
        File.CreateSymbolicLink(Path.Combine(_dir, "escape"), "/etc");
        var e2 = await Should.ThrowAsync<BuildException>(() => BuildAsync("FROM busybox\nCOPY escape/passwd /x\n"));
        e2.Message.ShouldContain("forbidden path outside the build context");
    }

    [Fact]
    public async Task An_identical_rebuild_takes_every_step_from_the_cache_and_a_changed_file_rebuilds_from_its_copy()
    {
        var cache = Path.Combine(_dir, ".cache-dir");
        Write(".dockerignore", ".cache-dir\n");
        Write("a.txt", "a");
        Write("b.txt", "b");
        var dockerfile = "FROM busybox\nRUN one\nCOPY a.txt /a\nRUN two\nCOPY b.txt /b\nRUN three\n";
        var options = new BuildOptions(_dir, CacheDirectory: cache);
        var (first, _) = await BuildAsync(dockerfile, options);
        first.CachedSteps.ShouldBe(0);
        var created = _engine.Created.Count;

        var (second, output) = await BuildAsync(dockerfile, options);
        second.CachedSteps.ShouldBe(5);
        second.ImageId.ShouldBe(first.ImageId);
        _engine.Created.Count.ShouldBe(created);
        output.ShouldContain("Using cache");

        Write("b.txt", "changed");
        File.SetLastWriteTimeUtc(Path.Combine(_dir, "a.txt"), DateTime.UtcNow.AddDays(-3)); // a time is not content
        var (third, _) = await BuildAsync(dockerfile, options);
        third.CachedSteps.ShouldBe(3);
        third.ImageId.ShouldNotBe(first.ImageId);
    }

    [Fact]
    public async Task A_cache_hit_whose_image_is_gone_is_rebuilt()
    {
        var cache = Path.Combine(_dir, ".cache-dir");
        var options = new BuildOptions(_dir, CacheDirectory: cache);
        var (first, _) = await BuildAsync("FROM busybox\nRUN one\n", options);
        _engine.Images.TryRemove(first.ImageId, out _);
        var (second, _) = await BuildAsync("FROM busybox\nRUN one\n", options);
        second.CachedSteps.ShouldBe(0);
        _engine.Images.ShouldContainKey(second.ImageId);
    }

    [Fact]
    public async Task Onbuild_triggers_of_the_base_run_first_and_are_not_inherited()
    {
        var (r, _) = await BuildAsync("FROM busybox AS base\nONBUILD ENV TRIGGERED=yes\nFROM base\nENV AFTER=1\n");
        var c = ConfigOf(r.ImageId);
        c.Env!.ShouldContain("TRIGGERED=yes");
        (c.OnBuild ?? []).ShouldBeEmpty();
    }

    [Fact]
    public async Task Label_flags_go_on_the_final_image_and_iidfile_gets_its_id()
    {
        var iid = Path.Combine(_dir, "iid");
        var (r, _) = await BuildAsync("FROM busybox\nRUN x\n", new BuildOptions(_dir, Labels: new Dictionary<string, string> { ["k"] = "v" }, ImageIdFile: iid, Tags: ["t:1"]));
        ConfigOf(r.ImageId).Labels!["k"].ShouldBe("v");
        File.ReadAllText(iid).ShouldBe(r.ImageId);
        _engine.Tags["t:1"].ShouldBe(r.ImageId);
    }

    [Fact]
    public async Task A_malformed_instruction_fails_before_any_step_with_its_line()
    {
        var e = await Should.ThrowAsync<BuildException>(() => BuildAsync("FROM busybox\nRUN true\nEXPOSE\n"));
        e.Message.ShouldBe("Dockerfile:3: EXPOSE requires at least one argument");
        _engine.Created.ShouldBeEmpty();
    }

    [Theory]
    [InlineData("COPY --link a.txt /b", "Dockerfile:2: the --link option requires BuildKit; the classic builder does not support it")]
    [InlineData("COPY --chmod=755 a.txt /b", "Dockerfile:2: the --chmod option requires BuildKit; the classic builder does not support it")]
    [InlineData("ADD --checksum=sha256:00 a.txt /b", "Dockerfile:2: the --checksum option requires BuildKit; the classic builder does not support it")]
    [InlineData("RUN --mount=type=cache,target=/c true", "Dockerfile:2: RUN --mount=type=cache,target=/c needs BuildKit; the classic builder does not support it")]
    [InlineData("HEALTHCHECK --start-interval=1s CMD true", "Dockerfile:2: unknown flag: --start-interval")]
    public async Task Flags_only_buildkit_has_are_refused_on_their_line(string instruction, string message)
    {
        Write("a.txt", "a");
        var e = await Should.ThrowAsync<BuildException>(() => BuildAsync($"FROM busybox\n{instruction}\n"));
        e.Message.ShouldBe(message);
    }

    [Fact]
    public async Task A_base_image_trigger_that_is_not_allowed_fails_on_the_from_line()
    {
        _engine.AddImage("triggers:latest", new ContainerConfig { Env = ["PATH=/bin"], Cmd = ["sh"], OnBuild = ["ENV OK=1", "TAG not:allowed"] });
        var e = await Should.ThrowAsync<BuildException>(() => BuildAsync("FROM busybox\nENV A=1\nFROM triggers\n"));
        e.Message.ShouldBe("Dockerfile:3: TAG isn't allowed as an ONBUILD trigger");
    }

    [Fact]
    public async Task Volume_in_json_form_keeps_each_string_whole_and_shell_form_splits_after_expansion()
    {
        var (r, _) = await BuildAsync("FROM busybox\nENV TWO=\"/b /c\"\nVOLUME [\"/with space\"]\nVOLUME /a $TWO\n");
        ConfigOf(r.ImageId).Volumes.ShouldBe(["/a", "/b", "/c", "/with space"], ignoreOrder: true);
    }

    [Fact]
    public async Task Tag_checks_references_that_come_from_variables_after_expansion()
    {
        var e = await Should.ThrowAsync<BuildException>(() => BuildAsync("FROM busybox\nARG NAME=Upper:1\nTAG $NAME\n"));
        e.Message.ShouldStartWith("Dockerfile:3: TAG \"Upper:1\": invalid reference format");
    }

    [Fact]
    public async Task Copy_from_a_stage_expands_wildcards_against_the_image_paths_like_go_filepath_match()
    {
        _engine.Directories.UnionWith(["/out", "/out/sub", "/out/dir1"]);
        _engine.Files.UnionWith(["/out/a.txt", "/out/b.txt", "/out/c.md", "/out/sub/d.txt", "/out/dir1/e"]);
        await BuildAsync("FROM busybox AS build\nFROM busybox\nCOPY --from=build /out/*.txt out/dir? /dst/\n");
        // `*` does not cross `/` (sub/d.txt is not matched); a matched directory brings its contents.
        _engine.Uploads.Single().Entries.ShouldBe(["dst Directory 0:0", "dst/a.txt RegularFile 0:0", "dst/b.txt RegularFile 0:0", "dst/e RegularFile 0:0"]);
    }

    [Fact]
    public async Task Copy_from_a_stage_with_a_pattern_that_matches_nothing_fails_as_docker()
    {
        _engine.Directories.Add("/out");
        _engine.Files.Add("/out/a");
        var e = await Should.ThrowAsync<BuildException>(() => BuildAsync("FROM busybox AS build\nFROM busybox\nCOPY --from=build /out/*.none /x/\n"));
        e.Message.ShouldBe("Dockerfile:3: COPY failed: no source files were specified");
        _engine.Containers.ShouldBeEmpty();
        // One pattern matching nothing is fine when another source gives something.
        await BuildAsync("FROM busybox AS build\nFROM busybox\nCOPY --from=build /out/*.none /out/a /x/\n");
        _engine.Uploads.Last().Entries.ShouldContain("x/a RegularFile 0:0");
    }

    private sealed class FakeSquash(FakeEngine engine) : ISquashService
    {
        public List<SquashRequest> Requests { get; } = [];

        public List<string> Results { get; } = [];

        public Task<SquashResult> SquashAsync(SquashRequest request, IProgress<SquashProgress>? progress, CancellationToken cancellationToken)
        {
            Requests.Add(request);
            var image = engine.Images[request.Image.ToString()!];
            var baseLayers = request.Base is null ? [] : engine.Images[request.Base.ToString()!].DiffIds;
            var id = "sha256:" + new string('f', 60) + Results.Count.ToString("x4", System.Globalization.CultureInfo.InvariantCulture);
            engine.Images[id] = FakeEngine.Image(id, image.Config, [.. baseLayers, "sha256:squashed"], 50);
            Results.Add(id);
            return Task.FromResult(new SquashResult(id, "sha256:squashed", image.DiffIds.Count, baseLayers.Count + 1, 100, 50, 10, []));
        }
    }
}
