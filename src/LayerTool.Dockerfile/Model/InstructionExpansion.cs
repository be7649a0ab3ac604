using LayerTool.Dockerfile.Instructions;
using LayerTool.Dockerfile.Shell;

namespace LayerTool.Dockerfile.Model;

/// <summary>
/// Expands an instruction's words for the step being built: returns a copy of the record with every word
/// the builder expands replaced by its value (quotes removed). Instructions the shell handles (RUN, CMD,
/// ENTRYPOINT, SHELL, HEALTHCHECK), ONBUILD and MAINTAINER come back unchanged. ARG and ENV are applied to a
/// state with <see cref="VariableState.Apply(ArgInstruction, ShellWordExpander)"/> instead; FROM expands
/// against <see cref="VariableState.GlobalLookup"/>. COPY/ADD heredoc bodies whose delimiter was not quoted
/// are expanded too, with quotes taken literally (as BuildKit does); RUN heredocs are left to the shell.
/// </summary>
public static class InstructionExpansion
{
    /// <exception cref="ShellExpansionException">A word is malformed or a required variable is unset.</exception>
    public static T Expand<T>(T instruction, IVariableLookup lookup, ShellWordExpander expander)
        where T : Instruction
    {
        ArgumentNullException.ThrowIfNull(instruction);
        ArgumentNullException.ThrowIfNull(lookup);
        ArgumentNullException.ThrowIfNull(expander);
        string W(string word) => expander.ExpandWord(word, lookup);
        string? O(string? word) => word is null ? null : W(word);
        IReadOnlyList<string> L(IEnumerable<string> words) => [.. words.Select(W)];
        var bodies = new ShellWordExpander { ProcessQuotes = false };
        IReadOnlyList<HeredocSource> H(IEnumerable<HeredocSource> docs) =>
            [.. docs.Select(d => d.Expand ? d with { Content = bodies.ExpandWord(d.Content, lookup) } : d)];

        Instruction result = instruction switch
        {
            FromInstruction f => f with { BaseName = W(f.BaseName), Platform = O(f.Platform) },
            CopyInstruction c => c with { Sources = L(c.Sources), HeredocSources = H(c.HeredocSources), Destination = W(c.Destination), Chown = O(c.Chown), Chmod = O(c.Chmod) },
            AddInstruction a => a with
            {
                Sources = L(a.Sources), HeredocSources = H(a.HeredocSources), Destination = W(a.Destination), Chown = O(a.Chown), Chmod = O(a.Chmod), Checksum = O(a.Checksum),
            },
            EnvInstruction e => e with { Variables = [.. e.Variables.Select(v => v with { Key = W(v.Key), Value = W(v.Value) })] },
            LabelInstruction l => l with { Labels = [.. l.Labels.Select(v => v with { Key = W(v.Key), Value = W(v.Value) })] },
            ArgInstruction a => a with { Args = [.. a.Args.Select(v => v with { Name = W(v.Name), DefaultValue = O(v.DefaultValue) })] },
            ExposeInstruction e => e with { Ports = [.. e.Ports.SelectMany(p => expander.ExpandWords(p, lookup))] },
            VolumeInstruction v => v with { Paths = L(v.Paths) },
            UserInstruction u => u with { User = W(u.User) },
            WorkdirInstruction w => w with { Path = W(w.Path) },
            StopSignalInstruction s => s with { Signal = W(s.Signal) },
            TagInstruction t => t with { References = L(t.References) },
            CompressInstruction c => c with { Base = O(c.Base) },
            _ => instruction,
        };
        return (T)result;
    }
}
