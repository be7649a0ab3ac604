using LayerTool.Dockerfile.Model;
using LayerTool.Dockerfile.Shell;

namespace LayerTool.Dockerfile.Tests;

/// <summary>Deeply nested substitutions (issue 14, item 5): a clear error, never a stack overflow.</summary>
public class NestingLimitTests
{
    private static string Nested(int levels, bool closed = true) =>
        string.Concat(Enumerable.Repeat("${a:-", levels)) + "x" + (closed ? new string('}', levels) : "");

    [Theory]
    [InlineData(30_000, true)]
    [InlineData(30_000, false)]
    [InlineData(100_000, true)]
    public void A_word_nested_past_the_limit_fails_clearly(int levels, bool closed)
    {
        var e = Should.Throw<ShellExpansionException>(() => new ShellWordExpander().ExpandWord(Nested(levels, closed), VariableLookup.Empty));
        e.Reason.ShouldBe($"substitutions nested more than {ShellWordExpander.MaxNesting} levels deep");
        e.Message.Length.ShouldBeLessThan(400);
    }

    [Fact]
    public void A_word_nested_to_the_limit_expands()
    {
        new ShellWordExpander().ExpandWord(Nested(ShellWordExpander.MaxNesting), VariableLookup.Empty).ShouldBe("x");
        new ShellWordExpander().ExpandWord(Nested(ShellWordExpander.MaxNesting), VariableLookup.FromAssignments(["a=set"])).ShouldBe("set");
    }

    [Fact]
    public void Quoted_nesting_counts_too()
    {
        var word = string.Concat(Enumerable.Repeat("\"${a:-", 5_000)) + "x" + string.Concat(Enumerable.Repeat("}\"", 5_000));
        Should.Throw<ShellExpansionException>(() => new ShellWordExpander().ExpandWord(word, VariableLookup.Empty))
            .Reason.ShouldContain("nested more than");
    }

    [Theory]
    [InlineData(30_000)]
    [InlineData(100_000)]
    public void Lint_reports_it_at_the_line_of_the_env(int levels)
    {
        var result = DockerfileLinter.Lint($"FROM busybox\n\nENV a={Nested(levels)}\nRUN true\n", "Dockerfile");
        var error = result.Errors.ShouldHaveSingleItem();
        error.Position.Line.ShouldBe(3);
        error.Message.ShouldContain("nested more than 1000 levels deep");
        error.ToException().Message.ShouldStartWith("Dockerfile:3:");
    }
}
