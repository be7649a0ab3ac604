using System.Text.Json.Nodes;
using LayerTool.Build.Plans;

namespace LayerTool.Build.Tests.Plans;

/// <summary>The exports' YAML writer: every string reads back as itself, whatever YAML would make of it plain.</summary>
public sealed class YamlTextTests
{
    public static TheoryData<string> Strings() =>
    [
        "plain", "build:base", "a b c", "", " lead", "trail ", "a: b", "a:", "x #y", "#x", "-c", "- x", "--from=x",
        "yes", "No", "on", "OFF", "y", "true", "False", "null", "~", "NULL", ".inf", ".NaN", "1", "1.0", "1e3", "0x1F", "012",
        "1:20", "2024-01-01", "{{tasks.a.outputs.parameters.image}}", "[a]", "{a: b}", "@x", "`x", "*x", "&x", "!x", "%x",
        "|x", ">x", "'x", "\"x\"", "?x", ",x", "tab\there", "multi\nline", "ends\n", "ü", "$HOME", "echo \"a\" > f",
        "back\\slash", "\u0001",
    ];

    [Theory]
    [MemberData(nameof(Strings))]
    public void Every_string_reads_back_as_itself(string value)
    {
        var yaml = YamlText.Write(YamlMap.Of(
            ("key", value),
            (value, "as a key"),
            ("list", YamlList.Of(value, YamlMap.Of(("inner", value)))),
            ("block", new YamlString(value, Block: true))));
        var back = YamlJson.Convert(yaml)!.AsObject();
        back["key"]!.GetValue<string>().ShouldBe(value, yaml);
        back[value]!.GetValue<string>().ShouldBe("as a key", yaml);
        back["list"]![0]!.GetValue<string>().ShouldBe(value, yaml);
        back["list"]![1]!["inner"]!.GetValue<string>().ShouldBe(value, yaml);
        back["block"]!.GetValue<string>().ShouldBe(value, yaml);
    }

    [Fact]
    public void Maps_lists_booleans_and_blocks_are_written_in_block_style()
    {
        var yaml = YamlText.Write(YamlMap.Of(
            ("a", YamlList.Of(YamlMap.Of(("b", "1"), ("c", new YamlBool(true))), "d")),
            ("empty", YamlList.Of()),
            ("none", new YamlMap([])),
            ("script", new YamlString("set -eu\necho hi\n", Block: true))), ["a comment", ""]);
        yaml.ShouldBe("# a comment\n#\na:\n  - b: \"1\"\n    c: true\n  - d\nempty: []\nnone: {}\nscript: |\n  set -eu\n  echo hi\n");
        JsonNode.DeepEquals(YamlJson.Convert(yaml), JsonNode.Parse("""{"a":[{"b":"1","c":true},"d"],"empty":[],"none":{},"script":"set -eu\necho hi\n"}""")).ShouldBeTrue();
    }
}
