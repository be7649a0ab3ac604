using System.Diagnostics.CodeAnalysis;

namespace LayerTool.Dockerfile.Shell;

/// <summary>
/// Where the expander reads variables from. The expander never reads the process environment: whoever
/// expands supplies the ARG/ENV values in scope at that step.
/// </summary>
public interface IVariableLookup
{
    /// <summary>The value of <paramref name="name"/>, when it is set (possibly to the empty string).</summary>
    bool TryGetValue(string name, [MaybeNullWhen(false)] out string value);

    /// <summary>Every name that is set.</summary>
    IEnumerable<string> Names { get; }
}

/// <summary>An immutable <see cref="IVariableLookup"/> over a dictionary (names are case-sensitive).</summary>
public sealed class VariableLookup : IVariableLookup
{
    private readonly Dictionary<string, string> _values;

    public VariableLookup(IEnumerable<KeyValuePair<string, string>> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        _values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in values)
            _values[k] = v;
    }

    /// <summary>A lookup where nothing is set.</summary>
    public static VariableLookup Empty { get; } = new([]);

    public IEnumerable<string> Names => _values.Keys;

    public bool TryGetValue(string name, [MaybeNullWhen(false)] out string value) => _values.TryGetValue(name, out value);

    /// <summary>Parses <c>K=V</c> strings; a string without <c>=</c> sets K to the empty string.</summary>
    public static VariableLookup FromAssignments(IEnumerable<string> assignments)
    {
        ArgumentNullException.ThrowIfNull(assignments);
        return new VariableLookup(assignments.Select(a =>
        {
            var eq = a.IndexOf('=', StringComparison.Ordinal);
            return eq < 0 ? KeyValuePair.Create(a, string.Empty) : KeyValuePair.Create(a[..eq], a[(eq + 1)..]);
        }));
    }
}
