using LayerTool.Dockerfile.Instructions;

namespace LayerTool.Dockerfile.Model;

/// <summary>One build stage: its FROM and the instructions after it, in order.</summary>
/// <param name="Index">0-based position in the file (what <c>COPY --from=0</c> refers to).</param>
/// <param name="Name">The lower-cased <c>AS name</c>, or null.</param>
/// <param name="From">The FROM that starts the stage.</param>
/// <param name="Instructions">Everything after the FROM up to the next FROM.</param>
public sealed record Stage(int Index, string? Name, FromInstruction From, IReadOnlyList<Instruction> Instructions)
{
    /// <summary>The name if it has one, else its index, as COPY --from and --target accept.</summary>
    public string DisplayName => Name ?? Index.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>True when <paramref name="nameOrIndex"/> names this stage (case-insensitive name, or the index).</summary>
    public bool IsNamed(string nameOrIndex) =>
        (Name is not null && string.Equals(Name, nameOrIndex, StringComparison.OrdinalIgnoreCase))
        || nameOrIndex == Index.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>What a COMPRESS squashes onto.</summary>
public enum CompressBaseKind
{
    /// <summary>No argument: the stage's own FROM image.</summary>
    StageFrom,

    /// <summary>The image an earlier stage produced.</summary>
    Stage,

    /// <summary>The image an earlier TAG in this build produced.</summary>
    Tag,

    /// <summary>Any other image reference (resolved by the engine).</summary>
    Image,

    /// <summary><c>scratch</c>: one layer holding the whole filesystem.</summary>
    Scratch,
}

/// <summary>A resolved COMPRESS base.</summary>
/// <param name="Kind">What sort of base it is.</param>
/// <param name="Value">The stage name, the normalised TAG reference, or the image reference.</param>
/// <param name="Stage">For <see cref="CompressBaseKind.Stage"/>: that stage.</param>
/// <param name="Tag">For <see cref="CompressBaseKind.Tag"/>: the TAG instruction that gave the name.</param>
public sealed record CompressBase(CompressBaseKind Kind, string Value, Stage? Stage = null, TagInstruction? Tag = null);
