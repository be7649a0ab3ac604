using LayerTool.Build.Plans;

namespace LayerTool.Build.Tests.Plans;

/// <summary>
/// docs/plan.schema.json (what editors check plan files with) agrees with the loader: every plan the loader
/// accepts is valid, and every refused case marked <c>schema-refuses</c> (the structural ones: unknown keys,
/// wrong types, bad names, tags and outputs, no images) is invalid. The rest (missing files, cycles, duplicate
/// names in the list form, ...) are beyond a schema.
/// </summary>
public sealed class PlanSchemaTests
{
    private static string Schema => Path.Combine(ThirdPartySchemas.RepoRoot, "docs", "plan.schema.json");

    public static TheoryData<string> AcceptedPlans()
    {
        var data = new TheoryData<string>();
        foreach (var dir in Directory.GetDirectories(Path.Combine(PlanLoaderTests.DataDirectory, "valid")).Order(StringComparer.Ordinal))
            data.Add(Path.Combine(dir, "plan.yaml"));
        data.Add(PlanGraphTests.ExamplePlan);
        return data;
    }

    public static TheoryData<string> StructuralRefusals() =>
        [.. Directory.GetDirectories(Path.Combine(PlanLoaderTests.DataDirectory, "refused"))
            .Where(d => File.Exists(Path.Combine(d, "schema-refuses")))
            .Select(d => Path.GetFileName(d)!)
            .Order(StringComparer.Ordinal)];

    [Theory]
    [MemberData(nameof(AcceptedPlans))]
    public void Accepted_plans_are_valid(string plan)
    {
        PlanLoader.Load(plan).Images.ShouldNotBeEmpty();
        SchemaValidation.Errors(Schema, YamlJson.Convert(File.ReadAllText(plan))).ShouldBeEmpty();
    }

    [Theory]
    [MemberData(nameof(StructuralRefusals))]
    public void Structural_refusals_are_invalid(string name)
    {
        var plan = Path.Combine(PlanLoaderTests.DataDirectory, "refused", name, "plan.yaml");
        Should.Throw<PlanException>(() => PlanGraph.Load(plan));
        SchemaValidation.Errors(Schema, YamlJson.Convert(File.ReadAllText(plan))).ShouldNotBeEmpty();
    }

    [Fact]
    public void The_schema_lists_the_keys_the_loader_knows()
    {
        var schema = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Schema))!;
        schema["properties"]!.AsObject().Select(p => p.Key).ShouldBe(PlanLoader.TopLevelKeys, ignoreOrder: true);
        schema["definitions"]!["imageInList"]!["properties"]!.AsObject().Select(p => p.Key).ShouldBe(PlanLoader.ImageKeys, ignoreOrder: true);
        schema["definitions"]!["imageInMap"]!["properties"]!.AsObject().Select(p => p.Key).ShouldBe(PlanLoader.ImageKeys.Skip(1), ignoreOrder: true);
    }
}
