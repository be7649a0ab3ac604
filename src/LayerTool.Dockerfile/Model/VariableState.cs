using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using LayerTool.Dockerfile.Instructions;
using LayerTool.Dockerfile.Shell;

namespace LayerTool.Dockerfile.Model;

/// <summary>
/// The variables a build step sees, immutable: each ENV/ARG gives a new state. ENV beats ARG of the same name;
/// an ARG takes the <c>--build-arg</c> value when one is given, else its default, else (inside a stage, with no
/// default) the global value of a meta ARG of that name. The predefined proxy args (HTTP_PROXY, ...) are
/// visible when given as build args, without a declaration. Nothing is read from the process environment.
/// </summary>
public sealed record VariableState
{
    /// <summary>Build args whose use needs no ARG declaration.</summary>
    public static IReadOnlySet<string> PredefinedArgs { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
        "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
    };

    private VariableState(ImmutableDictionary<string, string> buildArgs)
    {
        BuildArgs = buildArgs;
    }

    /// <summary>The <c>--build-arg</c> values given to the build.</summary>
    public ImmutableDictionary<string, string> BuildArgs { get; }

    /// <summary>The environment (ENV, and the base image's env), in order.</summary>
    public ImmutableList<KeyValuePair<string, string>> Env { get; init; } = [];

    /// <summary>ARGs declared in the current scope and their values (null = declared, no value).</summary>
    public ImmutableDictionary<string, string?> Args { get; init; } = ImmutableDictionary<string, string?>.Empty.WithComparers(StringComparer.Ordinal);

    /// <summary>The meta ARGs declared before the first FROM, with their values.</summary>
    public ImmutableDictionary<string, string?> GlobalArgs { get; init; } = ImmutableDictionary<string, string?>.Empty.WithComparers(StringComparer.Ordinal);

    /// <summary>The state before the first instruction, with the build's <c>--build-arg</c> values.</summary>
    public static VariableState Create(IEnumerable<KeyValuePair<string, string>>? buildArgs = null) =>
        new((buildArgs ?? []).ToImmutableDictionary(StringComparer.Ordinal));

    /// <summary>What a word in this state expands against: ENV, then ARG values, then predefined proxy args.</summary>
    public IVariableLookup Lookup => new StateLookup(this);

    /// <summary>What FROM expands against: the meta ARGs (declared before the first FROM) only.</summary>
    public IVariableLookup GlobalLookup => new VariableLookup(
        (IsMetaScope ? Args : GlobalArgs)
            .Where(a => a.Value is not null).Select(a => KeyValuePair.Create(a.Key, a.Value!)));

    /// <summary>True before <see cref="EndMetaScope"/>: ARGs declared now are meta ARGs.</summary>
    public bool IsMetaScope { get; init; } = true;

    /// <summary>
    /// The ARG values a RUN sees in its environment (not persisted in the image): declared args with a value
    /// and predefined proxy args given as build args, unless an ENV of the same name shadows them.
    /// </summary>
    public IReadOnlyList<KeyValuePair<string, string>> RunArgs
    {
        get
        {
            var envNames = Env.Select(e => e.Key).ToHashSet(StringComparer.Ordinal);
            var result = Args.Where(a => a.Value is not null && !envNames.Contains(a.Key))
                .Select(a => KeyValuePair.Create(a.Key, a.Value!)).ToList();
            result.AddRange(BuildArgs.Where(b => PredefinedArgs.Contains(b.Key) && !Args.ContainsKey(b.Key) && !envNames.Contains(b.Key)));
            return [.. result.OrderBy(kv => kv.Key, StringComparer.Ordinal)];
        }
    }

    /// <summary>The state at the start of a new stage: meta ARG values kept as globals, no ENV, no ARGs.</summary>
    public VariableState ForNewStage() => this with
    {
        Env = [],
        Args = ImmutableDictionary<string, string?>.Empty.WithComparers(StringComparer.Ordinal),
    };

    /// <summary>Ends the meta scope: the ARGs declared so far become the globals a stage may inherit.</summary>
    public VariableState EndMetaScope() => (this with { GlobalArgs = Args, IsMetaScope = false }).ForNewStage();

    /// <summary>Adds the environment inherited from the base image (<c>K=V</c> strings).</summary>
    public VariableState WithImageEnv(IEnumerable<string> env)
    {
        ArgumentNullException.ThrowIfNull(env);
        var state = this;
        foreach (var e in env)
        {
            var eq = e.IndexOf('=', StringComparison.Ordinal);
            state = state.SetEnv(eq < 0 ? e : e[..eq], eq < 0 ? string.Empty : e[(eq + 1)..]);
        }

        return state;
    }

    /// <summary>Sets one environment variable, replacing an earlier value in place.</summary>
    public VariableState SetEnv(string name, string value)
    {
        var index = Env.FindIndex(kv => kv.Key == name);
        var pair = KeyValuePair.Create(name, value);
        return this with { Env = index < 0 ? Env.Add(pair) : Env.SetItem(index, pair) };
    }

    /// <summary>Applies ENV: every key and value is expanded against the state before the instruction.</summary>
    public VariableState Apply(EnvInstruction env, ShellWordExpander expander)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(expander);
        var lookup = Lookup;
        var state = this;
        foreach (var kv in env.Variables)
            state = state.SetEnv(expander.ExpandWord(kv.Key, lookup), expander.ExpandWord(kv.Value, lookup));
        return state;
    }

    /// <summary>Applies ARG: declares each name; defaults are expanded against the state before the instruction.</summary>
    public VariableState Apply(ArgInstruction arg, ShellWordExpander expander)
    {
        ArgumentNullException.ThrowIfNull(arg);
        ArgumentNullException.ThrowIfNull(expander);
        var lookup = Lookup;
        var args = Args;
        foreach (var decl in arg.Args)
        {
            var name = expander.ExpandWord(decl.Name, lookup);
            string? value;
            if (BuildArgs.TryGetValue(name, out var given))
                value = given;
            else if (decl.DefaultValue is not null)
                value = expander.ExpandWord(decl.DefaultValue, lookup);
            else if (GlobalArgs.TryGetValue(name, out var global))
                value = global;
            else
                value = null;
            args = args.SetItem(name, value);
        }

        return this with { Args = args };
    }

    private sealed class StateLookup(VariableState state) : IVariableLookup
    {
        public IEnumerable<string> Names =>
            state.Env.Select(e => e.Key)
                .Concat(state.Args.Where(a => a.Value is not null).Select(a => a.Key))
                .Concat(state.BuildArgs.Keys.Where(PredefinedArgs.Contains))
                .Distinct(StringComparer.Ordinal);

        public bool TryGetValue(string name, [MaybeNullWhen(false)] out string value)
        {
            var index = state.Env.FindIndex(kv => kv.Key == name);
            if (index >= 0)
            {
                value = state.Env[index].Value;
                return true;
            }

            if (state.Args.TryGetValue(name, out var arg) && arg is not null)
            {
                value = arg;
                return true;
            }

            if (PredefinedArgs.Contains(name) && state.BuildArgs.TryGetValue(name, out var proxy))
            {
                value = proxy;
                return true;
            }

            value = null;
            return false;
        }
    }
}
