using System.Text.Json.Nodes;
using Json.Schema;

namespace LayerTool.Build.Tests.Plans;

/// <summary>JSON Schema validation with JsonSchema.Net (NuGet); each schema file is loaded once (the library registers schemas by $id).</summary>
internal static class SchemaValidation
{
    private static readonly Lock Gate = new();
    private static readonly Dictionary<string, JsonSchema> Loaded = new(StringComparer.Ordinal);

    public static JsonSchema Load(string path)
    {
        lock (Gate)
        {
            if (!Loaded.TryGetValue(path, out var schema))
            {
                schema = JsonSchema.FromFile(path);
                Loaded.Add(path, schema);
            }

            return schema;
        }
    }

    /// <summary>The errors of <paramref name="instance"/> against the schema at <paramref name="path"/> (empty: valid).</summary>
    public static IReadOnlyList<string> Errors(string path, JsonNode? instance)
    {
        var result = Load(path).Evaluate(instance, new EvaluationOptions { OutputFormat = OutputFormat.List });
        if (result.IsValid) return [];
        var errors = (result.Details ?? [])
            .Where(d => d.Errors is { Count: > 0 })
            .SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Key}: {e.Value}"))
            .ToList();
        return errors.Count > 0 ? errors : ["invalid"];
    }
}
