using LayerTool.Build.Frontend;

namespace LayerTool.Build.Tests.Frontend;

public sealed class FrontendCheckTests
{
    private static readonly Version Docker2010 = new(20, 10, 24);
    private static readonly Version Docker23 = new(23, 0, 1);

    [Fact]
    public void A_plain_Dockerfile_with_cache_mounts_and_chmod_needs_nothing_on_20_10() =>
        FrontendCheck.Check("FROM busybox\nRUN --mount=type=cache,target=/c true\nCOPY --chmod=755 a /a\n", Docker2010).ShouldBeEmpty();

    [Fact]
    public void A_syntax_directive_is_a_gap_the_classic_builder_can_take()
    {
        var gap = FrontendCheck.Check("# syntax=docker/dockerfile:1.4\nFROM busybox\n", Docker23).ShouldHaveSingleItem();
        gap.Line.ShouldBe(1);
        gap.What.ShouldBe("# syntax=docker/dockerfile:1.4");
        gap.ClassicCan.ShouldBeTrue();
    }

    [Fact]
    public void Heredocs_and_COPY_link_need_Docker_23()
    {
        const string file = "FROM busybox\nRUN <<EOF\necho hi\nEOF\nCOPY --link a /a\n";
        var gaps = FrontendCheck.Check(file, Docker2010);
        gaps.Select(g => (g.Line, g.What)).ShouldBe([(2, "a heredoc in RUN"), (5, "COPY --link")]);
        gaps.ShouldAllBe(g => g.ClassicCan);
        FrontendCheck.Check(file, Docker23).ShouldBeEmpty();
    }

    [Theory]
    [InlineData("RUN --mount=type=secret,id=token cat /run/secrets/token", "RUN --mount=type=secret")]
    [InlineData("RUN --mount=type=ssh ssh-add -l", "RUN --mount=type=ssh")]
    public void Secret_and_ssh_mounts_need_a_session_that_no_builder_has(string run, string what)
    {
        var gap = FrontendCheck.Check($"FROM busybox\n{run}\n", Docker23).ShouldHaveSingleItem();
        gap.What.ShouldBe(what);
        gap.ClassicCan.ShouldBeFalse();
    }

    [Theory]
    [InlineData("20.10.24+dfsg1", "20.10.24")]
    [InlineData("28.5.1", "28.5.1")]
    [InlineData("29.0.0-rc.1", "29.0.0")]
    [InlineData("dev", null)]
    public void Engine_versions_read_as_numbers(string text, string? expected) =>
        (FrontendCheck.ParseEngineVersion(text)?.ToString()).ShouldBe(expected);

    [Theory]
    [InlineData("20.10.24", "1.2")]
    [InlineData("23.0.6", "1.4")]
    [InlineData("29.1.0", "1.19")]
    [InlineData("18.06.0", null)]
    public void Built_in_frontend_by_engine(string engine, string? frontend) =>
        (FrontendCheck.BuiltInFrontend(Version.Parse(engine))?.ToString()).ShouldBe(frontend);
}
