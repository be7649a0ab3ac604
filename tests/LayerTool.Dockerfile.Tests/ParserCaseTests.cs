using LayerTool.Dockerfile.Model;
using LayerTool.Dockerfile.Syntax;

namespace LayerTool.Dockerfile.Tests;

/// <summary>Data/Parser/&lt;case&gt;/Dockerfile parsed (leniently) and dumped must equal Data/Parser/&lt;case&gt;/expected.</summary>
public class ParserCaseTests
{
    public static TheoryData<string> Cases => DataFiles.CaseFolders("Parser");

    [Theory]
    [MemberData(nameof(Cases))]
    public void Parses_as_expected(string caseName)
    {
        var text = DataFiles.ReadExact(Path.Combine(DataFiles.Root, "Parser", caseName, "Dockerfile"));
        var dump = DockerfileDump.DumpSyntax(DockerfileParser.ParseLenient(text, "Dockerfile"));
        DataFiles.ShouldMatchGolden(dump, "Parser", caseName, "expected");
    }
}

/// <summary>
/// Data/Errors/&lt;case&gt;/Dockerfile must fail strict parsing (parser + model) with exactly the
/// <c>line:col: message</c> in Data/Errors/&lt;case&gt;/error.
/// </summary>
public class ErrorCaseTests
{
    public static TheoryData<string> Cases => DataFiles.CaseFolders("Errors");

    [Theory]
    [MemberData(nameof(Cases))]
    public void Fails_with_the_expected_error(string caseName)
    {
        var dir = Path.Combine(DataFiles.Root, "Errors", caseName);
        var text = DataFiles.ReadExact(Path.Combine(dir, "Dockerfile"));
        var expected = File.ReadAllText(Path.Combine(dir, "error")).TrimEnd('\n');
        var e = Should.Throw<DockerfileException>(() => DockerfileModel.Parse(text, "Dockerfile"));
        $"{e.Line}:{e.Column}: {e.Detail}".ShouldBe(expected);
        e.Message.ShouldBe($"Dockerfile:{expected}");
    }
}

/// <summary>
/// Data/Lint/&lt;case&gt;/Dockerfile linted with the build args in <c>build-args</c> (one K=V a line, optional)
/// must give exactly the diagnostics in <c>expected</c>.
/// </summary>
public class LintCaseTests
{
    public static TheoryData<string> Cases => DataFiles.CaseFolders("Lint");

    [Theory]
    [MemberData(nameof(Cases))]
    public void Reports_every_diagnostic(string caseName)
    {
        var dir = Path.Combine(DataFiles.Root, "Lint", caseName);
        var text = DataFiles.ReadExact(Path.Combine(dir, "Dockerfile"));
        var argsFile = Path.Combine(dir, "build-args");
        var buildArgs = File.Exists(argsFile)
            ? File.ReadAllLines(argsFile).Where(l => l.Length > 0).Select(l => l.Split('=', 2)).ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : string.Empty)
            : new Dictionary<string, string>();
        var result = DockerfileLinter.Lint(text, "Dockerfile", buildArgs);
        var actual = string.Concat(result.Diagnostics.Select(d => d + "\n"));
        DataFiles.ShouldMatchGolden(actual, "Lint", caseName, "expected");
    }
}
