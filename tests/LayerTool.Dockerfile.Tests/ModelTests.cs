using LayerTool.Dockerfile.Instructions;
using LayerTool.Dockerfile.Model;
using LayerTool.Dockerfile.Shell;

namespace LayerTool.Dockerfile.Tests;

/// <summary>The API the build executor uses: stages, typed records, variable state, COMPRESS bases.</summary>
public class ModelTests
{
    private static readonly ShellWordExpander Expander = new();

    [Fact]
    public void Stages_hold_typed_instructions_with_their_source()
    {
        var model = DockerfileModel.Parse("""
            ARG BASE=busybox
            FROM $BASE AS Build
            COPY --from=alpine --chown=1:2 --link a b/ /dst/
            RUN echo a \
                b
            HEALTHCHECK --interval=1m30s --timeout=500ms --retries=2 CMD ["true"]
            ONBUILD ADD --unpack=false x.tar /x
            FROM build
            COPY <<-EOF /motd
            	hello
            	EOF
            """);
        model.MetaArgs.Single().Args.ShouldBe([new ArgDeclaration("BASE", "busybox")]);
        model.Stages.Count.ShouldBe(2);
        var build = model.Stages[0];
        build.Name.ShouldBe("build");
        build.From.BaseName.ShouldBe("$BASE");
        var copy = build.Instructions[0].ShouldBeOfType<CopyInstruction>();
        copy.Sources.ShouldBe(["a", "b/"]);
        copy.Destination.ShouldBe("/dst/");
        (copy.From, copy.Chown, copy.Link).ShouldBe(("alpine", "1:2", true));
        var run = build.Instructions[1].ShouldBeOfType<RunInstruction>();
        run.Range.ShouldBe(new SourceRange(4, 5));
        run.Command.ShouldBe(new CommandLine(["echo a     b"], false));
        run.SourceText.ShouldBe("RUN echo a \\\n    b");
        var health = build.Instructions[2].ShouldBeOfType<HealthcheckInstruction>();
        health.Test.ShouldBe(["CMD", "true"]);
        (health.Interval, health.Timeout, health.Retries).ShouldBe((TimeSpan.FromSeconds(90), TimeSpan.FromMilliseconds(500), (int?)2));
        var onbuild = build.Instructions[3].ShouldBeOfType<OnbuildInstruction>();
        onbuild.Expression.ShouldBe("ADD --unpack=false x.tar /x");
        onbuild.Trigger.ShouldBeOfType<AddInstruction>().Unpack.ShouldBe(false);
        var final = model.Stages[1];
        model.StagesNeededFor(final).ShouldBe([build, final]);
        var heredoc = final.Instructions[0].ShouldBeOfType<CopyInstruction>().HeredocSources.Single();
        heredoc.ShouldBe(new HeredocSource("EOF", "hello\n", true));
    }

    [Fact]
    public void Volume_records_say_whether_they_were_written_as_json()
    {
        var stage = DockerfileModel.Parse("FROM x\nVOLUME [\"/a b\"]\nVOLUME /c /d\n").Stages[0];
        var json = stage.Instructions[0].ShouldBeOfType<VolumeInstruction>();
        (json.IsJson, json.Paths.Count).ShouldBe((true, 1));
        var shell = stage.Instructions[1].ShouldBeOfType<VolumeInstruction>();
        shell.IsJson.ShouldBeFalse();
        shell.Paths.ShouldBe(["/c", "/d"]);
    }

    [Fact]
    public void Arg_scoping_follows_docker()
    {
        var model = DockerfileModel.Parse("""
            ARG V=1 GLOBAL_ONLY=g
            FROM busybox:$V
            ARG V
            ARG LOCAL=${V}-local
            ENV LOCAL=env-wins
            """);
        var state = VariableState.Create([KeyValuePair.Create("V", "2")]);
        foreach (var arg in model.MetaArgs)
            state = state.Apply(arg, Expander);
        Expander.ExpandWord(model.Stages[0].From.BaseName, state.GlobalLookup).ShouldBe("busybox:2");
        state = state.EndMetaScope();
        state.Lookup.TryGetValue("V", out _).ShouldBeFalse("meta ARGs are visible to FROM only");

        foreach (var instruction in model.Stages[0].Instructions)
        {
            state = instruction switch
            {
                ArgInstruction a => state.Apply(a, Expander),
                EnvInstruction e => state.Apply(e, Expander),
                _ => state,
            };
            if (instruction is ArgInstruction { Args: [{ Name: "LOCAL" }] })
            {
                state.Lookup.TryGetValue("LOCAL", out var local).ShouldBeTrue();
                local.ShouldBe("2-local");
            }
        }

        state.Lookup.TryGetValue("V", out var v).ShouldBeTrue();
        v.ShouldBe("2", "an ARG without a value inherits the global one, here overridden by --build-arg");
        state.Lookup.TryGetValue("GLOBAL_ONLY", out _).ShouldBeFalse();
        state.Lookup.TryGetValue("LOCAL", out var shadowed).ShouldBeTrue();
        shadowed.ShouldBe("env-wins");
        state.RunArgs.ShouldBe([KeyValuePair.Create("V", "2")], "ENV shadows the ARG of the same name");
        state.Env.ShouldBe([KeyValuePair.Create("LOCAL", "env-wins")]);
    }

    [Fact]
    public void Proxy_args_need_no_declaration_and_image_env_is_replaced_in_place()
    {
        var state = VariableState.Create([KeyValuePair.Create("HTTP_PROXY", "http://p"), KeyValuePair.Create("OTHER", "x")])
            .EndMetaScope()
            .WithImageEnv(["PATH=/bin", "HOME=/root"])
            .SetEnv("PATH", "/usr/bin:/bin");
        state.Lookup.TryGetValue("HTTP_PROXY", out var proxy).ShouldBeTrue();
        proxy.ShouldBe("http://p");
        state.Lookup.TryGetValue("OTHER", out _).ShouldBeFalse();
        state.RunArgs.ShouldBe([KeyValuePair.Create("HTTP_PROXY", "http://p")]);
        state.Env.Select(e => e.Key).ShouldBe(["PATH", "HOME"]);
        Expander.ExpandWord("$PATH", state.Lookup).ShouldBe("/usr/bin:/bin");
    }

    [Fact]
    public void Env_pairs_see_the_state_before_the_instruction()
    {
        var env = (EnvInstruction)DockerfileModel.Parse("FROM x\nENV A=1 B=$A\n").Stages[0].Instructions[0];
        var state = VariableState.Create().EndMetaScope().SetEnv("A", "0").Apply(env, Expander);
        state.Env.ShouldBe([KeyValuePair.Create("A", "1"), KeyValuePair.Create("B", "0")]);
    }

    [Fact]
    public void Compress_bases_resolve_to_stage_from_stage_tag_image_or_scratch()
    {
        var model = DockerfileModel.Parse("""
            FROM busybox AS base
            TAG app:1 plain
            COMPRESS
            COMPRESS plain:latest
            FROM base AS next
            COMPRESS base
            COMPRESS app:1
            COMPRESS alpine:3
            COMPRESS scratch
            COMPRESS $X
            """);
        CompressBase Resolve(int stage, int index, string? expanded = null) =>
            model.ResolveCompressBase(model.Stages[stage], (CompressInstruction)model.Stages[stage].Instructions[index], expanded);

        Resolve(0, 1).ShouldBe(new CompressBase(CompressBaseKind.StageFrom, "busybox"));
        Resolve(0, 2).Kind.ShouldBe(CompressBaseKind.Tag);
        Resolve(0, 2).Value.ShouldBe("plain:latest");
        Resolve(1, 0).Stage.ShouldBe(model.Stages[0]);
        Resolve(1, 1).Tag.ShouldBe(model.Stages[0].Instructions[0]);
        Resolve(1, 2).ShouldBe(new CompressBase(CompressBaseKind.Image, "alpine:3"));
        Resolve(1, 3).Kind.ShouldBe(CompressBaseKind.Scratch);
        Resolve(1, 4, "base").Kind.ShouldBe(CompressBaseKind.Stage);
        Should.Throw<DockerfileException>(() => Resolve(1, 4, "UPPER")).Line.ShouldBe(10);
    }

    [Fact]
    public void Expanding_instructions_are_docker_s_list_plus_tag_and_compress()
    {
        foreach (var keyword in new[] { "ADD", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR", "ARG", "TAG", "COMPRESS" })
            Syntax.Keywords.Expands(keyword).ShouldBeTrue(keyword);
        foreach (var keyword in new[] { "RUN", "CMD", "ENTRYPOINT", "SHELL", "HEALTHCHECK", "ONBUILD", "MAINTAINER" })
            Syntax.Keywords.Expands(keyword).ShouldBeFalse(keyword);
    }

    [Fact]
    public void Expansion_reports_used_and_unset_names()
    {
        var result = Expander.Expand("${A}-$B-${C:-x}", VariableLookup.FromAssignments(["A=1"]));
        result.Value.ShouldBe("1--x");
        result.Used.ShouldBe(["A"]);
        result.Unset.ShouldBe(["B", "C"], ignoreOrder: true);
        new ShellWordExpander { KeepUnset = true }.ExpandWord("$A/${B}", VariableLookup.Empty).ShouldBe("$A/${B}");
    }

    [Fact]
    public void Strict_parse_and_lenient_lint_agree_on_the_first_error()
    {
        const string text = "FROM busybox\nUSER\nENV\n";
        var strict = Should.Throw<DockerfileException>(() => DockerfileModel.Parse(text, "df"));
        var lint = DockerfileLinter.Lint(text, "df");
        lint.Errors.Count().ShouldBe(2);
        lint.Errors.First().Position.ShouldBe(strict.Position);
        strict.Message.ShouldBe("df:2:1: USER requires exactly one argument");
    }

    [Fact]
    public void Parser_reads_a_text_reader()
    {
        using var reader = new StringReader("FROM a\r\nRUN b\r\n");
        var syntax = Syntax.DockerfileParser.Parse(reader, "f");
        syntax.Instructions.Select(i => i.Keyword).ShouldBe(["FROM", "RUN"]);
    }
}

public class DockerIgnoreFileTests
{
    [Fact]
    public void Reads_patterns_like_docker()
    {
        var patterns = DockerIgnore.DockerIgnoreMatcher.ReadPatterns("\uFEFF# comment\r\n  *.log  \n\n!  keep.log\n/abs/path/\n ./rel//x/../y\n#not a pattern\n");
        patterns.ShouldBe(["*.log", "!keep.log", "abs/path", "rel/y"]);
    }

    [Fact]
    public void Rejects_a_lone_exclamation_mark_and_bad_classes()
    {
        Should.Throw<ArgumentException>(() => new DockerIgnore.DockerIgnoreMatcher(["!"])).Message.ShouldStartWith("illegal exclusion pattern: \"!\"");
        Should.Throw<ArgumentException>(() => new DockerIgnore.DockerIgnoreMatcher(["[a-"])).Message.ShouldStartWith("syntax error in pattern: [a-");
    }

    [Fact]
    public void Knows_when_a_walker_cannot_skip_excluded_directories()
    {
        DockerIgnore.DockerIgnoreMatcher.Parse("node_modules\n").HasExclusions.ShouldBeFalse();
        DockerIgnore.DockerIgnoreMatcher.Parse("*\n!src\n").HasExclusions.ShouldBeTrue();
        DockerIgnore.DockerIgnoreMatcher.Empty.IsExcluded("anything").ShouldBeFalse();
    }
}

public class InstructionExpansionTests
{
    [Fact]
    public void Expands_the_words_docker_expands_and_keeps_the_source()
    {
        var model = DockerfileModel.Parse("""
            FROM busybox
            COPY --chown=$U "$SRC" /dst/$D/
            EXPOSE $PORTS 9000/udp
            ENV "K$D"="v $U"
            RUN echo $U
            TAG app:$D
            """);
        var lookup = VariableLookup.FromAssignments(["U=app", "SRC=a b", "D=x", "PORTS=80 443"]);
        var expander = new ShellWordExpander();
        var i = model.Stages[0].Instructions;
        var copy = InstructionExpansion.Expand((CopyInstruction)i[0], lookup, expander);
        (copy.Chown, copy.Sources[0], copy.Destination).ShouldBe(("app", "a b", "/dst/x/"));
        copy.Range.ShouldBe(i[0].Range);
        InstructionExpansion.Expand((ExposeInstruction)i[1], lookup, expander).Ports.ShouldBe(["80", "443", "9000/udp"]);
        InstructionExpansion.Expand((EnvInstruction)i[2], lookup, expander).Variables.ShouldBe([new KeyValue("Kx", "v app", true)]);
        InstructionExpansion.Expand(i[3], lookup, expander).ShouldBeSameAs(i[3]);
        InstructionExpansion.Expand((TagInstruction)i[4], lookup, expander).References.ShouldBe(["app:x"]);
    }
}

public class OnbuildTriggerTests
{
    [Fact]
    public void Parses_stored_triggers_including_heredocs()
    {
        var triggers = Instructions.OnbuildTriggers.ParseAll(["RUN echo hi", "COPY . /app", "RUN <<EOF\necho later\nEOF"], "base:1");
        triggers[0].ShouldBeOfType<RunInstruction>().Command.Arguments.ShouldBe(["echo hi"]);
        triggers[1].ShouldBeOfType<CopyInstruction>().Destination.ShouldBe("/app");
        triggers[2].ShouldBeOfType<RunInstruction>().Heredocs.Single().Content.ShouldBe("echo later\n");
    }

    [Theory]
    [InlineData("FROM x", "base:1:1:1: FROM isn't allowed as an ONBUILD trigger")]
    [InlineData("ONBUILD RUN x", "base:1:1:1: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    [InlineData("RUN a\nRUN b", "base:1:1:1: onbuild trigger should be a single expression")]
    [InlineData("COPY x", "base:1:1:1: COPY requires at least two arguments, but only one was provided. Destination could not be determined")]
    public void Rejects_invalid_triggers(string expression, string message)
    {
        Should.Throw<DockerfileException>(() => Instructions.OnbuildTriggers.Parse(expression, "base:1")).Message.ShouldBe(message);
    }
}

public class GlobalLookupTests
{
    [Fact]
    public void Global_lookup_sees_meta_args_only_even_inside_a_stage()
    {
        var model = DockerfileModel.Parse("ARG G=1\nFROM x\nARG L=2\n");
        var expander = new ShellWordExpander();
        var state = VariableState.Create().Apply(model.MetaArgs[0], expander);
        state.IsMetaScope.ShouldBeTrue();
        state.GlobalLookup.TryGetValue("G", out _).ShouldBeTrue();
        state = state.EndMetaScope().Apply((ArgInstruction)model.Stages[0].Instructions[0], expander);
        state.GlobalLookup.TryGetValue("G", out var g).ShouldBeTrue();
        g.ShouldBe("1");
        state.GlobalLookup.TryGetValue("L", out _).ShouldBeFalse();
    }
}

public class HeredocExpansionTests
{
    [Fact]
    public void Copy_heredoc_bodies_expand_unless_the_delimiter_is_quoted()
    {
        var model = DockerfileModel.Parse("FROM x\nCOPY <<A <<'B' /d/\nsay \"$WHO\" 'it' \\$HOME\nA\nkeep $WHO\nB\n");
        var copy = InstructionExpansion.Expand((CopyInstruction)model.Stages[0].Instructions[0],
            VariableLookup.FromAssignments(["WHO=world"]), new ShellWordExpander());
        copy.HeredocSources[0].Content.ShouldBe("say \"world\" 'it' $HOME\n");
        copy.HeredocSources[1].Content.ShouldBe("keep $WHO\n");
    }
}
