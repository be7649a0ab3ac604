using LayerTool.Dockerfile.Instructions;
using LayerTool.Dockerfile.Model;
using LayerTool.Dockerfile.Shell;

namespace LayerTool.Docker.Dind;

/// <summary>
/// The images a Dockerfile takes from outside itself, so that a dind build can be given them from the
/// outer engine instead of pulling: every FROM that is not scratch or an earlier stage (after expanding
/// the meta ARGs with the build args), every <c>COPY --from</c> that names no stage, and every COMPRESS base
/// that is neither a stage nor a name the file TAGs itself.
/// </summary>
public static class DindBaseImages
{
    public static IReadOnlyList<string> Of(DockerfileModel model, IReadOnlyDictionary<string, string>? buildArgs = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        buildArgs ??= new Dictionary<string, string>();
        var expander = model.CreateExpander();
        var meta = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var declaration in model.MetaArgs.SelectMany(a => a.Args))
        {
            if (buildArgs.TryGetValue(declaration.Name, out var given)) meta[declaration.Name] = given;
            else if (declaration.DefaultValue is { } d) meta[declaration.Name] = expander.ExpandWord(d, new VariableLookup(meta));
        }
        var lookup = new VariableLookup(meta);

        var tagged = model.Stages.SelectMany(s => s.Instructions).OfType<TagInstruction>().SelectMany(t => t.References)
            .Select(Normalise).ToHashSet(StringComparer.Ordinal);
        var images = new List<string>();
        void Add(string reference)
        {
            if (reference.Length == 0 || reference.Contains('$', StringComparison.Ordinal)) return;
            if (string.Equals(reference, "scratch", StringComparison.OrdinalIgnoreCase)) return;
            if (tagged.Contains(Normalise(reference))) return;
            if (!images.Contains(reference, StringComparer.Ordinal)) images.Add(reference);
        }
        bool IsStage(string name, int before) => model.Stages.Any(s => s.Index < before && s.IsNamed(name));

        foreach (var stage in model.Stages)
        {
            var from = expander.ExpandWord(stage.From.BaseName, lookup);
            if (!IsStage(from, stage.Index)) Add(from);
            foreach (var copy in stage.Instructions.OfType<CopyInstruction>())
                if (copy.From is { } f && !IsStage(f, stage.Index)) Add(f);
            foreach (var compress in stage.Instructions.OfType<CompressInstruction>())
                if (compress.Base is { } b && !IsStage(b, stage.Index) && !stage.IsNamed(b)) Add(b);
        }
        return images;
    }

    private static string Normalise(string reference) =>
        reference.Contains(':', StringComparison.Ordinal) && !reference.EndsWith(']') && reference.LastIndexOf(':') > reference.LastIndexOf('/')
            ? reference
            : reference + ":latest";
}
