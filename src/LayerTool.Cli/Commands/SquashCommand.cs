using System.CommandLine;
using System.Globalization;

namespace LayerTool.Cli.Commands;

/// <summary>What <c>layertool squash</c> was asked to do (parsed, validated, not yet run).</summary>
/// <param name="Image">The image to squash (a reference or ID; with <see cref="Input"/>, a name inside the archive).</param>
/// <param name="Onto">The base to put the one new layer on, or null for <c>scratch</c>.</param>
/// <param name="Tags">Tags for the result.</param>
/// <param name="Message">The squash history entry's comment.</param>
/// <param name="Output">Also write the result here (a file for docker-archive, a directory or .tar for OCI).</param>
/// <param name="Format"><c>docker</c> or <c>oci</c>.</param>
/// <param name="NoLoad">Do not load the result into the engine.</param>
/// <param name="Input">Read IMAGE (and BASE, unless <see cref="BaseInput"/>) from this archive or OCI layout; no engine.</param>
/// <param name="BaseInput">Read BASE from this archive or OCI layout.</param>
/// <param name="Timestamp">Reproducible mode: the clamp time (SOURCE_DATE_EPOCH, or the Unix epoch).</param>
/// <param name="Json">Print the result as JSON.</param>
/// <param name="CacheDir">Where base-filesystem indexes are cached; null: the user's cache directory.</param>
public sealed record SquashOptions(
    string Image,
    string? Onto,
    IReadOnlyList<string> Tags,
    string? Message,
    string? Output,
    string Format,
    bool NoLoad,
    string? Input,
    string? BaseInput,
    DateTimeOffset? Timestamp,
    bool Json,
    string? CacheDir);

/// <summary><c>layertool squash IMAGE --onto BASE|scratch</c>: everything IMAGE adds over BASE as one layer.</summary>
public sealed class SquashCommand
{
    private readonly Argument<string> ImageArgument = new("IMAGE") { Description = "The image to squash (reference or ID)" };

    private readonly Option<string> OntoOption = new("--onto")
    {
        Description = "The base image to put the new layer on (any image, ancestor or not), or 'scratch'",
        Required = true,
    };

    private readonly Option<string[]> TagOption = new("--tag", "-t")
    {
        Description = "Tag the result (repeatable)",
        AllowMultipleArgumentsPerToken = false,
    };

    private readonly Option<string?> MessageOption = new("--message", "-m") { Description = "Comment of the squash's history entry" };

    private readonly Option<string?> OutputOption = new("--output", "-o") { Description = "Also write the result to this file (docker) or directory (oci)" };

    private readonly Option<string> FormatOption = new("--format")
    {
        Description = "Format of --output: docker (docker-archive tar) or oci (OCI image layout)",
        DefaultValueFactory = _ => "docker",
    };

    private readonly Option<bool> NoLoadOption = new("--no-load") { Description = "Do not load the result into the engine" };

    private readonly Option<string?> InputOption = new("--input") { Description = "Read IMAGE and BASE from this docker-archive or OCI layout (no engine)" };

    private readonly Option<string?> BaseInputOption = new("--base-input") { Description = "Read BASE from this docker-archive or OCI layout" };

    private readonly Option<bool> ReproducibleOption = new("--reproducible")
    {
        Description = "Same inputs, same image ID: clamp times to SOURCE_DATE_EPOCH (or 0)",
    };

    private readonly Option<bool> JsonOption = new("--json") { Description = "Print the result as JSON" };

    private readonly Option<string?> CacheDirOption = new("--cache-dir") { Description = "Where base filesystem indexes are cached (default ~/.cache/layertool)" };

    /// <summary>Builds the verb.</summary>
    /// <param name="run">Executes the parsed options (the app's wiring).</param>
    /// <param name="environment">Reads SOURCE_DATE_EPOCH; default: the process environment.</param>
    public static Command Create(Func<SquashOptions, CancellationToken, Task<int>> run, Func<string, string?>? environment = null) =>
        new SquashCommand().Build(run, environment ?? Environment.GetEnvironmentVariable);

    private Command Build(Func<SquashOptions, CancellationToken, Task<int>> run, Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(run);
        var command = new Command("squash", "Replace every layer IMAGE adds over BASE with one layer: the difference of the two filesystems")
        {
            ImageArgument, OntoOption, TagOption, MessageOption, OutputOption, FormatOption, NoLoadOption,
            InputOption, BaseInputOption, ReproducibleOption, JsonOption, CacheDirOption,
        };
        FormatOption.AcceptOnlyFromAmong("docker", "oci");
        command.Validators.Add(result =>
        {
            if (result.GetValue(NoLoadOption) && result.GetValue(OutputOption) is null && result.GetValue(InputOption) is null)
                result.AddError("--no-load needs --output: the result would go nowhere");
            if (result.GetValue(BaseInputOption) is not null && result.GetValue(InputOption) is null)
                result.AddError("--base-input needs --input");
            if (result.GetValue(InputOption) is not null && result.GetValue(OutputOption) is null)
                result.AddError("--input needs --output: there is no engine to load the result into");
        });
        command.SetAction((parseResult, ct) => run(Parse(parseResult, environment("SOURCE_DATE_EPOCH")), ct));
        return command;
    }

    /// <summary>The options record of a parse of this verb. <paramref name="sourceDateEpoch"/> is the
    /// SOURCE_DATE_EPOCH value (read by the caller: only the CLI reads the environment).</summary>
    private SquashOptions Parse(ParseResult parseResult, string? sourceDateEpoch)
    {
        ArgumentNullException.ThrowIfNull(parseResult);
        var onto = parseResult.GetValue(OntoOption)!;
        DateTimeOffset? timestamp = null;
        if (parseResult.GetValue(ReproducibleOption))
        {
            timestamp = DateTimeOffset.UnixEpoch;
            if (!string.IsNullOrWhiteSpace(sourceDateEpoch))
            {
                if (!long.TryParse(sourceDateEpoch, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
                    throw new UsageException($"SOURCE_DATE_EPOCH must be a number of seconds, not '{sourceDateEpoch}'");
                timestamp = DateTimeOffset.FromUnixTimeSeconds(seconds);
            }
        }
        var input = parseResult.GetValue(InputOption);
        return new SquashOptions(
            parseResult.GetValue(ImageArgument)!,
            string.Equals(onto, "scratch", StringComparison.Ordinal) ? null : onto,
            parseResult.GetValue(TagOption) ?? [],
            parseResult.GetValue(MessageOption),
            parseResult.GetValue(OutputOption),
            parseResult.GetValue(FormatOption) ?? "docker",
            parseResult.GetValue(NoLoadOption) || input is not null,
            input,
            parseResult.GetValue(BaseInputOption),
            timestamp,
            parseResult.GetValue(JsonOption),
            parseResult.GetValue(CacheDirOption));
    }
}
