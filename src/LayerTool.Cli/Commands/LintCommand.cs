using System.CommandLine;
using LayerTool.Dockerfile.Model;

namespace LayerTool.Cli.Commands;

/// <summary>What <c>layertool lint</c> was asked to do.</summary>
/// <param name="File">The Dockerfile path, or <c>-</c> for standard input.</param>
/// <param name="BuildArgs">The <c>--build-arg</c> values, in order given (a later one wins).</param>
public sealed record LintOptions(string File, IReadOnlyList<KeyValuePair<string, string>> BuildArgs)
{
    public bool Equals(LintOptions? other) =>
        other is not null && File == other.File && BuildArgs.SequenceEqual(other.BuildArgs);

    public override int GetHashCode() => HashCode.Combine(File, BuildArgs.Count);
}

/// <summary>
/// <c>layertool lint [-f FILE] [--build-arg K=V]...</c>: reports every error and warning as
/// <c>file:line:col: severity: message</c>; exit 0 without errors, 1 with.
/// </summary>
internal sealed class LintCommand : Command
{
    private readonly Func<string, string?> _environment;

    /// <param name="context">Where to read and write.</param>
    /// <param name="environment">Resolves <c>--build-arg NAME</c> (no value) like docker: from the environment.</param>
    public LintCommand(CliContext context, Func<string, string?> environment)
        : base("lint", "Check a Dockerfile and report every error and warning.")
    {
        ArgumentNullException.ThrowIfNull(context);
        _environment = environment ?? throw new ArgumentNullException(nameof(environment));
        Add(FileOption);
        Add(BuildArgOption);
        BuildArgOption.Validators.Add(r =>
        {
            foreach (var value in r.GetValueOrDefault<string[]>() ?? [])
            {
                if (value.Length == 0 || value[0] == '=')
                    r.AddError($"--build-arg needs NAME=VALUE or NAME, not '{value}'");
            }
        });
        SetAction((result, ct) => CommandErrors.RunAsync(context, c => ExecuteAsync(Bind(result), context, c), ct));
    }

    public Option<string> FileOption { get; } = new("--file", "-f")
    {
        Description = "The Dockerfile to read; - reads standard input.",
        HelpName = "FILE",
        DefaultValueFactory = _ => DockerfileInput.DefaultFile,
    };

    public Option<string[]> BuildArgOption { get; } = new("--build-arg")
    {
        Description = "A build argument, NAME=VALUE (or NAME to take it from the environment); repeatable.",
        HelpName = "NAME=VALUE",
    };

    public LintOptions Bind(ParseResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var args = new List<KeyValuePair<string, string>>();
        foreach (var value in result.GetValue(BuildArgOption) ?? [])
        {
            var eq = value.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
                args.Add(KeyValuePair.Create(value[..eq], value[(eq + 1)..]));
            else if (_environment(value) is { } fromEnv)
                args.Add(KeyValuePair.Create(value, fromEnv));
        }

        return new LintOptions(result.GetValue(FileOption) ?? DockerfileInput.DefaultFile, args);
    }

    public static async Task<int> ExecuteAsync(LintOptions options, CliContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        var (text, name) = await DockerfileInput.ReadAsync(options.File, context, cancellationToken).ConfigureAwait(false);
        var buildArgs = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in options.BuildArgs)
            buildArgs[k] = v;
        var result = DockerfileLinter.Lint(text, name, buildArgs);
        foreach (var d in result.Diagnostics)
            await context.Out.WriteLineAsync(d.ToString()).ConfigureAwait(false);
        return result.HasErrors ? CommandErrors.Failure : CommandErrors.Success;
    }
}
