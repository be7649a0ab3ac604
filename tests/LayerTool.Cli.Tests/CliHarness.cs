namespace LayerTool.Cli.Tests;

/// <summary>Runs the CLI in-process with captured output.</summary>
internal sealed class CliHarness
{
    public StringWriter Out { get; } = new();

    public StringWriter Error { get; } = new();

    public string Stdin { get; init; } = string.Empty;

    public Dictionary<string, string> Environment { get; } = [];

    public static string RepoRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "LayerTool.sln")))
                dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("repository root not found");
        }
    }

    public CliContext Context => new(Out, Error, () => new StringReader(Stdin), RepoRoot);

    public Task<int> RunAsync(params string[] args) => RunAsync(CancellationToken.None, args);

    public Task<int> RunAsync(CancellationToken cancellationToken, params string[] args) =>
        LayerToolApp.RunAsync(args, Context, cancellationToken, name => Environment.TryGetValue(name, out var v) ? v : null);
}
