using LayerTool.Build.Planning;

namespace LayerTool.Build.Tests.Planning;

/// <summary>
/// Data-driven planner cases: each <c>Data/Planning/*.case</c> holds the options, the Dockerfile, and either the
/// expected plan (<see cref="BuildPlanFormatter.Text"/> with the generated Dockerfiles) or the expected error.
/// <c>LAYERTOOL_UPDATE_GOLDEN=1</c> rewrites the expected part (review the diff before committing it).
/// </summary>
public sealed class PlannerCaseTests
{
    private const string DockerfileMarker = "==== Dockerfile\n";
    private const string PlanMarker = "==== plan\n";
    private const string ErrorMarker = "==== error\n";

    private static string Root => Path.Combine(AppContext.BaseDirectory, "Data", "Planning");

    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var file in Directory.GetFiles(Root, "*.case").Order(StringComparer.Ordinal))
            data.Add(Path.GetFileNameWithoutExtension(file));
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Plan_matches_the_expected_dump(string name)
    {
        var text = File.ReadAllText(Path.Combine(Root, name + ".case")).Replace("\r\n", "\n", StringComparison.Ordinal);
        var optionsLine = text[..text.IndexOf('\n', StringComparison.Ordinal)];
        optionsLine.ShouldStartWith("options:");
        var start = text.IndexOf(DockerfileMarker, StringComparison.Ordinal) + DockerfileMarker.Length;
        var planAt = text.IndexOf(PlanMarker, StringComparison.Ordinal);
        var errorAt = text.IndexOf(ErrorMarker, StringComparison.Ordinal);
        var end = planAt >= 0 ? planAt : errorAt;
        end.ShouldBeGreaterThan(start, "a case has a ==== plan or ==== error section");
        var dockerfile = text[start..end];
        var options = ParseOptions(optionsLine["options:".Length..]);

        string actual;
        string marker;
        try
        {
            var plan = BuildPlanner.Plan(dockerfile, options, "Dockerfile", "b1");
            actual = BuildPlanFormatter.Text(plan, dockerfiles: true);
            marker = PlanMarker;
            // Every generated Dockerfile keeps the user's line count, so the engine's line numbers are the user's.
            foreach (var build in plan.Steps.OfType<PlanBuild>())
                build.Build.Dockerfile.Split('\n').Length.ShouldBe(dockerfile.Split('\n').Length);
            BuildPlanFormatter.Json(plan).ShouldContain("\"buildId\": \"b1\"");
        }
        catch (BuildException e)
        {
            actual = e.Message + "\n";
            marker = ErrorMarker;
        }

        if (Environment.GetEnvironmentVariable("LAYERTOOL_UPDATE_GOLDEN") == "1")
        {
            File.WriteAllText(Path.Combine(SourceRoot, name + ".case"), text[..end] + marker + actual);
            return;
        }
        var expectedAt = text.IndexOf(marker, StringComparison.Ordinal);
        expectedAt.ShouldBeGreaterThanOrEqualTo(0, $"expected a {marker.Trim()} section, got:\n{actual}");
        actual.ShouldBe(text[(expectedAt + marker.Length)..]);
    }

    /// <summary>A tiny docker-like option parser for the cases: -t, --target, --build-arg, --label, --squash, --network, --no-cache.</summary>
    internal static BuildOptions ParseOptions(string line)
    {
        var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var tags = new List<string>();
        var args = new Dictionary<string, string>(StringComparer.Ordinal);
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        string? target = null;
        string? network = null;
        var squash = false;
        var noCache = false;
        for (var i = 0; i < words.Length; i++)
        {
            switch (words[i])
            {
                case "-t": tags.Add(words[++i]); break;
                case "--target": target = words[++i]; break;
                case "--network": network = words[++i]; break;
                case "--squash": squash = true; break;
                case "--no-cache": noCache = true; break;
                case "--build-arg":
                {
                    var kv = words[++i].Split('=', 2);
                    args[kv[0]] = kv[1];
                    break;
                }
                case "--label":
                {
                    var kv = words[++i].Split('=', 2);
                    labels[kv[0]] = kv[1];
                    break;
                }
                default: throw new InvalidOperationException($"unknown option {words[i]}");
            }
        }
        return new BuildOptions("/nonexistent", Tags: tags, BuildArgs: args, Target: target, NetworkMode: network, NoCache: noCache, Labels: labels, Squash: squash);
    }

    private static string SourceRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "LayerTool.Build.Tests.csproj"))) dir = dir.Parent;
            return Path.Combine(dir?.FullName ?? throw new InvalidOperationException("test project folder not found"), "Data", "Planning");
        }
    }
}
