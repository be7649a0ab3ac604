using System.Text.Json;
using LayerTool.Dockerfile.Model;

namespace LayerTool.Dockerfile.Tests;

/// <summary><c>parse --json</c>: what the JSON says about ENV and LABEL pairs.</summary>
public class JsonDumpTests
{
    [Fact]
    public void Pairs_say_whether_they_were_written_with_an_equals_sign()
    {
        var model = DockerfileModel.Parse("""
            FROM busybox
            ENV A=1 B="two words"
            ENV C three words
            LABEL l=v
            LABEL legacy value with spaces
            """);
        using var json = JsonDocument.Parse(DockerfileDump.ToJson(model));
        var instructions = json.RootElement.GetProperty("stages")[0].GetProperty("instructions");
        string Describe(JsonElement pair) =>
            $"{pair.GetProperty("key").GetString()}|{pair.GetProperty("value").GetString()}|{pair.GetProperty("hasEquals").GetBoolean()}";
        List<string> Pairs(int i) => [.. instructions[i].GetProperty("pairs").EnumerateArray().Select(Describe)];

        // Values are the words as written (quotes kept: expansion happens at build time).
        Pairs(0).ShouldBe(["A|1|True", "B|\"two words\"|True"]);
        Pairs(1).ShouldBe(["C|three words|False"]);
        Pairs(2).ShouldBe(["l|v|True"]);
        Pairs(3).ShouldBe(["legacy|value with spaces|False"]);
        // The rest of each instruction is as before.
        instructions[1].GetProperty("keyword").GetString().ShouldBe("ENV");
        instructions[1].GetProperty("original").GetString().ShouldBe("ENV C three words");
    }
}
