using System.Text.Json.Serialization;

namespace LayerTool.Cli;

/// <summary>One layer of <c>layertool layers --json</c>.</summary>
internal sealed record LayerJson(int Index, string DiffId, long Size, string? CreatedBy, long Files, long FileBytes, long WastedFiles, long WastedBytes);

/// <summary>One path of <c>layertool diff --json</c>.</summary>
internal sealed record ChangeJson(string Path, string Kind, string? Detail);

/// <summary>The result of <c>layertool squash --json</c>.</summary>
internal sealed record SquashJson(
    string ImageId,
    string? LayerDiffId,
    int LayersBefore,
    int LayersAfter,
    long BytesBefore,
    long BytesAfter,
    long LayerBytes,
    long BytesReclaimed,
    IReadOnlyList<string> Tags,
    string? Output,
    IReadOnlyList<string> Warnings,
    string? Method,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<PushedJson>? Pushed = null);

/// <summary>One push of <c>layertool squash --push --json</c>: where, and the manifest digest the registry has.</summary>
internal sealed record PushedJson(string Reference, string Digest);

/// <summary>
/// The JSON the verbs print, serialized by generated code: no reflection, so the tool also runs as a
/// Native AOT binary (which starts in a few milliseconds instead of ~150 ms of JIT).
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(List<LayerJson>))]
[JsonSerializable(typeof(List<ChangeJson>))]
[JsonSerializable(typeof(SquashJson))]
internal sealed partial class CliJson : JsonSerializerContext;
