using System.Text.Json;
using LayerTool.Dockerfile.Shell;

namespace LayerTool.Dockerfile.Tests;

/// <summary>
/// One case a line: <c>input | env | expected</c>. env is <c>-</c> (nothing set), space-separated <c>K=V</c>,
/// or a JSON object. expected is the expanded word; <c>!message</c> means expansion fails with that message;
/// in words.txt it is a JSON array of the split words. Files ending in <c>-backtick.txt</c> use the ` escape.
/// </summary>
public class ExpanderCaseTests
{
    public static TheoryData<string> WordCases => Merge(DataFiles.Lines("Expand/expand.txt"), DataFiles.Lines("Expand/expand-backtick.txt"), "`");

    public static TheoryData<string> SplitCases => DataFiles.Lines("Expand/words.txt");

    private static TheoryData<string> Merge(TheoryData<string> a, TheoryData<string> b, string prefix)
    {
        var all = new TheoryData<string>();
        foreach (var row in a)
            all.Add(row);
        foreach (var row in b)
            all.Add(prefix + row);
        return all;
    }

    internal static (string Input, IVariableLookup Env, string Expected) Split(string line)
    {
        var parts = line.Split(" | ");
        if (parts.Length == 2 && parts[1].EndsWith(" |", StringComparison.Ordinal))
            parts = [parts[0], parts[1][..^2], string.Empty];
        parts.Length.ShouldBe(3, $"a case line needs 'input | env | expected': {line}");
        var env = parts[1].Trim();
        IVariableLookup lookup = env switch
        {
            "-" => VariableLookup.Empty,
            _ when env.StartsWith('{') => new VariableLookup(JsonSerializer.Deserialize<Dictionary<string, string>>(env)!),
            _ => VariableLookup.FromAssignments(env.Split(' ', StringSplitOptions.RemoveEmptyEntries)),
        };
        return (parts[0], lookup, parts[2]);
    }

    [Theory]
    [MemberData(nameof(WordCases))]
    public void Expands_a_word(string line)
    {
        var escape = line.StartsWith('`') ? '`' : '\\';
        var (input, env, expected) = Split(escape == '`' ? line[1..] : line);
        var expander = new ShellWordExpander(escape);
        if (expected.StartsWith('!'))
        {
            var e = Should.Throw<ShellExpansionException>(() => expander.ExpandWord(input, env));
            e.Reason.ShouldBe(expected[1..]);
        }
        else
        {
            expander.ExpandWord(input, env).ShouldBe(expected);
        }
    }

    [Theory]
    [MemberData(nameof(SplitCases))]
    public void Splits_words(string line)
    {
        var (input, env, expected) = Split(line);
        var words = new ShellWordExpander().ExpandWords(input, env);
        words.ShouldBe(JsonSerializer.Deserialize<string[]>(expected)!);
    }
}

/// <summary>One case a line: <c>patterns | path | excluded|included</c>; patterns space-separated, <c>-</c> for none.</summary>
public class DockerIgnoreCaseTests
{
    public static TheoryData<string> Cases => DataFiles.Lines("dockerignore.txt");

    [Theory]
    [MemberData(nameof(Cases))]
    public void Matches_like_docker(string line)
    {
        var parts = line.Split(" | ");
        parts.Length.ShouldBe(3);
        var patterns = parts[0] == "-" ? [] : parts[0].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var matcher = DockerIgnore.DockerIgnoreMatcher.Parse(string.Join('\n', patterns));
        matcher.IsExcluded(parts[1]).ShouldBe(parts[2] == "excluded", line);
    }
}
