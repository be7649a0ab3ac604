using LayerTool.Dockerfile.Instructions;

namespace LayerTool.Dockerfile.Model;

/// <summary>
/// The raw words of an instruction that the builder expands (FROM's base is expanded against the meta ARGs
/// with <see cref="VariableState.GlobalLookup"/>; ARG and ENV through <see cref="VariableState.Apply(ArgInstruction, Shell.ShellWordExpander)"/>).
/// </summary>
public static class ExpandableWords
{
    /// <summary>The words to expand, in order; empty for instructions the shell handles (RUN, CMD, ...).</summary>
    public static IReadOnlyList<string> Of(Instruction instruction) => instruction switch
    {
        FromInstruction f => [f.BaseName, .. Optional(f.Platform)],
        CopyInstruction c => [.. c.Sources, c.Destination, .. Optional(c.Chown), .. Optional(c.Chmod)],
        AddInstruction a => [.. a.Sources, a.Destination, .. Optional(a.Chown), .. Optional(a.Chmod), .. Optional(a.Checksum)],
        EnvInstruction e => [.. e.Variables.SelectMany(v => new[] { v.Key, v.Value })],
        LabelInstruction l => [.. l.Labels.SelectMany(v => new[] { v.Key, v.Value })],
        ArgInstruction a => [.. a.Args.SelectMany(v => new[] { v.Name }.Concat(Optional(v.DefaultValue)))],
        ExposeInstruction e => e.Ports,
        VolumeInstruction v => v.Paths,
        UserInstruction u => [u.User],
        WorkdirInstruction w => [w.Path],
        StopSignalInstruction s => [s.Signal],
        TagInstruction t => t.References,
        CompressInstruction c => [.. Optional(c.Base)],
        _ => [],
    };

    private static IEnumerable<string> Optional(string? s) => s is null ? [] : [s];
}
