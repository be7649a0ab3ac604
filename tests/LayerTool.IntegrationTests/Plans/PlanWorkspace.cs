using System.Globalization;
using System.Text;
using System.Text.Json;
using LayerTool.Cli;

namespace LayerTool.IntegrationTests.Plans;

/// <summary>One result line of <c>plan run --progress json</c>'s summary.</summary>
public sealed record PlanRunLine(string Image, string State, string? Engine, double Seconds, string? Id, string? Message);

/// <summary>What one in-process <c>layertool plan ...</c> printed.</summary>
public sealed record PlanCliResult(int ExitCode, string StdOut, string StdErr)
{
    /// <summary>The images of the run's JSON summary (the last line of stdout), by name.</summary>
    public IReadOnlyDictionary<string, PlanRunLine> Images
    {
        get
        {
            var last = StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last(l => l.Contains("\"summary\"", StringComparison.Ordinal));
            using var json = JsonDocument.Parse(last);
            return json.RootElement.GetProperty("images").EnumerateArray().Select(e => new PlanRunLine(
                    e.GetProperty("image").GetString()!,
                    e.GetProperty("state").GetString()!,
                    e.TryGetProperty("engine", out var engine) ? engine.GetString() : null,
                    e.GetProperty("seconds").GetDouble(),
                    e.TryGetProperty("id", out var id) ? id.GetString() : null,
                    e.TryGetProperty("message", out var message) ? message.GetString() : null))
                .ToDictionary(l => l.Image, StringComparer.Ordinal);
        }
    }

    /// <summary>The names of the images in a state.</summary>
    public IReadOnlyList<string> InState(string state) => [.. Images.Values.Where(l => l.State == state).Select(l => l.Image).Order(StringComparer.Ordinal)];
}

/// <summary>
/// A plan in a temp directory: the 8-image test plan (three levels below the roots and a diamond), its contexts, tags
/// named after the workspace so that tests never meet each other's images, and an in-process <c>layertool</c> with a
/// cache directory of its own. Disposing removes the directory and every image the plan tagged in the main engine.
/// </summary>
public sealed class PlanWorkspace : IAsyncDisposable
{
    private readonly EngineFixture _engine;

    public PlanWorkspace(EngineFixture engine)
    {
        _engine = engine;
        Root = Directory.CreateTempSubdirectory("lt-plan-").FullName;
        Prefix = "lt-plan-" + Guid.NewGuid().ToString("N")[..8];
        Cache = Path.Combine(Root, ".cache");
    }

    public string Root { get; }

    /// <summary>Every image ID a run of this workspace reported: removed at the end, also those a later run replaced.</summary>
    private readonly HashSet<string> _built = new(StringComparer.Ordinal);

    /// <summary>The repository prefix of every tag.</summary>
    public string Prefix { get; }

    public string Cache { get; }

    public string PlanPath => Path.Combine(Root, "plan.yaml");

    /// <summary>The tag of an image of the plan.</summary>
    public string Tag(string image) => $"{Prefix}/{image}:1";

    /// <summary>
    /// The test plan: base (RUN) → lib-a, lib-b (COPY) → app (FROM lib-a, COPY --from lib-b: the diamond) → web; lib-b →
    /// tool → cli (named by its tag, not its name); solo stands alone. <paramref name="failing"/> makes that image's
    /// build fail (<c>RUN exit 3</c>); <paramref name="registry"/> adds a registry line; <paramref name="pushed"/> gets
    /// <c>output: both</c> (tagged in the engine and pushed to the registry).
    /// </summary>
    public void WriteStandardPlan(string? failing = null, string? registry = null, string? pushed = null)
    {
        Image("base", "FROM busybox\nRUN echo base > /base\nCOPY base.txt /\n", failing);
        Image("lib-a", "FROM base\nCOPY lib-a.txt /\n", failing);
        Image("lib-b", "FROM base\nCOPY lib-b.txt /\n", failing);
        Image("app", "FROM lib-a\nCOPY --from=lib-b /lib-b.txt /from-b.txt\nCOPY app.txt /\n", failing);
        Image("web", "FROM app\nCOPY web.txt /\n", failing);
        Image("tool", "FROM lib-b\nCOPY tool.txt /\n", failing);
        Image("cli", $"FROM {Tag("tool")}\nCOPY cli.txt /\n", failing);
        Image("solo", "FROM busybox\nCOPY solo.txt /\n", failing);
        var plan = new StringBuilder();
        if (registry is not null) plan.Append("registry: ").Append(registry).Append('\n');
        plan.Append("images:\n");
        foreach (var name in Names)
        {
            plan.Append(CultureInfo.InvariantCulture, $"  {name}:\n    context: {name}\n    tags: [{Tag(name)}]\n");
            if (name == pushed) plan.Append("    output: both\n");
        }
        File.WriteAllText(PlanPath, plan.ToString());
    }

    public static IReadOnlyList<string> Names { get; } = ["base", "lib-a", "lib-b", "app", "web", "tool", "cli", "solo"];

    /// <summary>Every image the standard plan has below <paramref name="image"/> (itself included).</summary>
    public static IReadOnlyList<string> WithDescendants(string image) => image switch
    {
        "base" => ["app", "base", "cli", "lib-a", "lib-b", "tool", "web"],
        "lib-a" => ["app", "lib-a", "web"],
        "lib-b" => ["app", "cli", "lib-b", "tool", "web"],
        "app" => ["app", "web"],
        "tool" => ["cli", "tool"],
        _ => [image],
    };

    private void Image(string name, string dockerfile, string? failing)
    {
        var dir = Path.Combine(Root, name);
        Directory.CreateDirectory(dir);
        if (name == failing) dockerfile = dockerfile.Replace("\nCOPY ", "\nRUN exit 3\nCOPY ", StringComparison.Ordinal);
        File.WriteAllText(Path.Combine(dir, "Dockerfile"), dockerfile);
        File.WriteAllText(Path.Combine(dir, name + ".txt"), name + "\n");
        // In every context, not copied: the workspace's images differ from every other workspace's (their input
        // labels do), so that no engine holds them already from an earlier test.
        File.WriteAllText(Path.Combine(dir, ".workspace"), Prefix + "\n");
    }

    /// <summary>Changes one file of an image's context.</summary>
    public void Touch(string image) => File.AppendAllText(Path.Combine(Root, image, image + ".txt"), "changed\n");

    /// <summary>Runs <c>layertool plan ARGS</c> in-process (the plan file is the first argument after the verb).</summary>
    public async Task<PlanCliResult> RunAsync(IEnumerable<string> args, CancellationToken cancellationToken = default)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await LayerToolApp.RunAsync(["plan", .. args], new CliContext(output, error, () => TextReader.Null, Root), cancellationToken,
            name => name switch
            {
                "XDG_CACHE_HOME" => Cache,
                "LAYERTOOL_BUILDER" => null,
                _ => Environment.GetEnvironmentVariable(name),
            });
        var result = new PlanCliResult(code, output.ToString(), error.ToString());
        if (result.StdOut.Contains("\"summary\"", StringComparison.Ordinal))
            foreach (var id in result.Images.Values.Select(l => l.Id).OfType<string>()) _built.Add(id);
        return result;
    }

    /// <summary><c>plan run PLAN --progress json --network none</c> plus <paramref name="extra"/>.</summary>
    public Task<PlanCliResult> PlanRunAsync(params string[] extra) => RunAsync(["run", PlanPath, "--progress", "json", "--network", "none", .. extra]);

    /// <summary>A file of an image in the main engine (<c>docker run --rm IMAGE cat PATH</c>).</summary>
    public async Task<string> CatAsync(string image, string path) =>
        (await _engine.DockerAsync(["run", "--rm", "--network", "none", "--label", EngineFixture.TestLabel + "=1", image, "cat", path])).Trim();

    public async ValueTask DisposeAsync()
    {
        var images = await EngineFixture.RunAsync("docker", ["images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", $"reference={Prefix}/*"], Root,
            CancellationToken.None, null, new Dictionary<string, string> { ["DOCKER_HOST"] = _engine.DockerHost });
        var tags = images.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (tags.Length > 0)
            await EngineFixture.RunAsync("docker", ["rmi", .. tags], Root, CancellationToken.None, null, new Dictionary<string, string> { ["DOCKER_HOST"] = _engine.DockerHost });
        // Images a later run replaced are untagged by now; children first (the reverse of the order they were reported).
        if (_built.Count > 0)
            await EngineFixture.RunAsync("docker", ["rmi", .. _built.Reverse()], Root, CancellationToken.None, null, new Dictionary<string, string> { ["DOCKER_HOST"] = _engine.DockerHost });
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
