namespace LayerTool.Cli.Tests;

/// <summary><c>layertool plan graph</c> and <c>plan export</c> through the CLI, in-process.</summary>
public sealed class PlanCommandTests : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("layertool-plan-cli-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    private const string Example = "examples/plan/plan.yaml";

    [Fact]
    public async Task Graph_prints_levels_with_parents_and_why()
    {
        var cli = new CliHarness();
        (await cli.RunAsync("plan", "graph", Example)).ShouldBe(0, cli.Error.ToString());
        cli.Out.ToString().ShouldBe("""
            4 images, 4 dependencies, 3 levels, registry 127.0.0.1:5000/plan-example
            level 0:
              base
            level 1:
              runtime  <- base (FROM base)
            level 2:
              api      <- runtime (FROM runtime)
              worker   <- base (COPY --from plan-example/base:1); runtime (FROM runtime)

            """.Replace("\r\n", "\n", StringComparison.Ordinal));
        cli.Error.ToString().ShouldBeEmpty();
    }

    [Fact]
    public async Task Graph_writes_DOT_and_Mermaid()
    {
        var dot = new CliHarness();
        (await dot.RunAsync("plan", "graph", Example, "--format", "dot")).ShouldBe(0);
        var text = dot.Out.ToString();
        text.ShouldStartWith("digraph plan {\n");
        text.ShouldContain("  \"base\" -> \"runtime\" [label=\"FROM base\"];\n");
        text.ShouldContain("  \"base\" -> \"worker\" [label=\"COPY --from plan-example/base:1\"];\n");
        text.ShouldContain("  { rank=same; \"api\"; \"worker\"; }\n");
        text.ShouldEndWith("}\n");

        var mermaid = new CliHarness();
        (await mermaid.RunAsync("plan", "graph", Example, "--format", "mermaid")).ShouldBe(0);
        mermaid.Out.ToString().ShouldBe("""
            flowchart TD
              n0["base"]
              n1["runtime"]
              n2["api"]
              n3["worker"]
              n0 -->|"FROM base"| n1
              n1 -->|"FROM runtime"| n2
              n0 -->|"COPY --from plan-example/base:1"| n3
              n1 -->|"FROM runtime"| n3

            """.Replace("\r\n", "\n", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Export_writes_the_pipeline_to_stdout_or_a_file()
    {
        var stdout = new CliHarness();
        (await stdout.RunAsync("plan", "export", Example, "--to", "gitlab")).ShouldBe(0, stdout.Error.ToString());
        stdout.Out.ToString().ShouldContain("build:worker:\n");

        var file = Path.Combine(_temp, "workflow.yaml");
        var argo = new CliHarness();
        (await argo.RunAsync("plan", "export", Example, "--to", "argo", "-o", file, "--runner-image", "registry.example/layertool-runner:1")).ShouldBe(0, argo.Error.ToString());
        argo.Out.ToString().ShouldBeEmpty();
        var text = File.ReadAllText(file);
        text.ShouldContain("kind: Workflow\n");
        text.ShouldContain("image: registry.example/layertool-runner:1\n");
        Directory.GetFiles(_temp).ShouldBe([file]);
    }

    [Fact]
    public async Task Refusals_print_file_and_line_and_exit_1()
    {
        File.WriteAllText(Path.Combine(_temp, "plan.yaml"), "images:\n  a:\n    context: nowhere\n");
        var cli = new CliHarness();
        (await cli.RunAsync("plan", "graph", Path.Combine(_temp, "plan.yaml"))).ShouldBe(1);
        cli.Error.ToString().ShouldBe($"layertool: {Path.Combine(_temp, "plan.yaml")}:3: image a: the context nowhere is not a directory ({Path.Combine(_temp, "nowhere")})\n");
    }

    [Fact]
    public async Task Export_of_a_plan_without_registry_is_refused()
    {
        Directory.CreateDirectory(Path.Combine(_temp, "a"));
        File.WriteAllText(Path.Combine(_temp, "a", "Dockerfile"), "FROM busybox:latest\n");
        File.WriteAllText(Path.Combine(_temp, "plan.yaml"), "images:\n  a:\n    context: a\n");
        var cli = new CliHarness();
        (await cli.RunAsync("plan", "export", Path.Combine(_temp, "plan.yaml"), "--to", "argo")).ShouldBe(1);
        cli.Error.ToString().ShouldStartWith("layertool: plan.yaml: the plan has no registry");
    }

    [Theory]
    [InlineData("plan", "graph", Example, "--format", "svg")]
    [InlineData("plan", "export", Example)]
    [InlineData("plan", "export", Example, "--to", "jenkins")]
    [InlineData("plan", "graph")]
    public async Task Usage_errors_exit_2(params string[] args)
    {
        var cli = new CliHarness();
        (await cli.RunAsync(args)).ShouldBe(2);
        cli.Error.ToString().ShouldStartWith("layertool: ");
    }
}
