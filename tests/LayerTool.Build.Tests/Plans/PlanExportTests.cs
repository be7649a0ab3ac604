using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using LayerTool.Build.Plans;

namespace LayerTool.Build.Tests.Plans;

/// <summary>
/// The exports, validated offline against the engines' own schemas (GitLab's CI schema with JsonSchema.Net;
/// Argo's Workflow types with the validator scripts/schemas.sh fetches), and checked for what a schema cannot
/// see: the jobs' edges are the plan's, no cycle, no dangling need or dependency, parents' digests flow to
/// the children that use them.
/// </summary>
public sealed partial class PlanExportTests : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("layertool-plan-export-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    public static TheoryData<string> Plans() =>
    [
        PlanGraphTests.ExamplePlan,
        Path.Combine(PlanLoaderTests.DataDirectory, "valid", "diamond", "plan.yaml"),
        Path.Combine(PlanLoaderTests.DataDirectory, "valid", "list-form", "plan.yaml"),
    ];

    /// <summary>The plan's graph; plans without a registry get one (exports refuse them, tested apart).</summary>
    private static PlanGraph Graph(string plan)
    {
        var graph = PlanGraph.Load(plan);
        return graph.Plan.Registry is null ? PlanGraph.Build(graph.Plan with { Registry = "registry.example:5000/ci" }) : graph;
    }

    private static string Export(PlanGraph graph, PlanExportTarget target) =>
        PlanExport.Export(graph, new PlanExportOptions(target, ThirdPartySchemas.RepoRoot));

    private static HashSet<string> Parents(PlanGraph graph, string image) =>
        [.. graph.Parents(image).Select(p => p.Name)];

    [Theory]
    [MemberData(nameof(Plans))]
    public void The_GitLab_pipeline_is_valid_for_GitLab_and_has_the_plans_edges(string plan)
    {
        var graph = Graph(plan);
        var yaml = Export(graph, PlanExportTarget.GitLab);
        var pipeline = YamlJson.Convert(yaml)!.AsObject();
        SchemaValidation.Errors(ThirdPartySchemas.GitLabCiSchema, pipeline).ShouldBeEmpty(yaml);

        var stages = pipeline["stages"]!.AsArray().Select(s => (string)s!).ToList();
        var jobs = pipeline.Where(p => p.Key.StartsWith("build:", StringComparison.Ordinal)).ToDictionary(p => p.Key, p => p.Value!.AsObject());
        jobs.Keys.ShouldBe(graph.Plan.Images.Select(i => PlanExport.GitLabJob(i.Name)), ignoreOrder: true);
        var edges = new List<PlanEdge>();
        foreach (var image in graph.Plan.Images)
        {
            var job = jobs[PlanExport.GitLabJob(image.Name)];
            var needs = job["needs"]!.AsArray().Select(n => (string)n!["job"]!).ToList();
            needs.ShouldAllBe(n => jobs.ContainsKey(n), "a need names no job");
            needs.Select(n => n["build:".Length..]).ToHashSet().ShouldBe(Parents(graph, image.Name));
            job["needs"]!.AsArray().ShouldAllBe(n => (bool)n!["artifacts"]!);
            foreach (var need in needs)
            {
                stages.IndexOf((string)jobs[need]["stage"]!).ShouldBeLessThan(stages.IndexOf((string)job["stage"]!));
                edges.Add(new PlanEdge(need, PlanExport.GitLabJob(image.Name), PlanEdgeKind.DependsOn, need, image.Location));
            }

            // The parents' digests arrive as dotenv variables, are pulled by digest and tagged as the Dockerfile names them.
            var script = job["script"]!.AsArray().Select(l => (string)l!).ToList();
            foreach (var parent in graph.References(image.Name).Select(r => r.Parent).Distinct())
                script.ShouldContain($"docker pull \"${PlanExport.ImageVariable(parent)}\"");
            foreach (var reference in graph.References(image.Name))
                script.ShouldContain(l => l.StartsWith($"docker tag \"${PlanExport.ImageVariable(reference.Parent)}\" ", StringComparison.Ordinal));
            var dotenv = (string)job["artifacts"]!["reports"]!["dotenv"]!;
            script[^1].ShouldMatch($"^echo \"{PlanExport.ImageVariable(image.Name)}=.+@\\$digest\" > {Regex.Escape(dotenv)}$");
            script.ShouldContain(l => l.StartsWith("layertool build ", StringComparison.Ordinal));
        }

        PlanGraph.FindCycle(jobs.Keys, edges).ShouldBeNull();
    }

    [Theory]
    [MemberData(nameof(Plans))]
    public void The_Argo_workflow_is_valid_for_Argo_and_has_the_plans_edges(string plan)
    {
        var graph = Graph(plan);
        var yaml = Export(graph, PlanExportTarget.Argo);
        var workflow = YamlJson.Convert(yaml)!.AsObject();
        ArgoErrors(workflow).ShouldBeEmpty(yaml);

        var templates = workflow["spec"]!["templates"]!.AsArray().ToDictionary(t => (string)t!["name"]!, t => t!.AsObject());
        var entry = templates[(string)workflow["spec"]!["entrypoint"]!];
        var tasks = entry["dag"]!["tasks"]!.AsArray().ToDictionary(t => (string)t!["name"]!, t => t!.AsObject());
        tasks.Keys.ShouldBe(graph.Plan.Images.Select(i => PlanExport.ArgoName(i.Name)), ignoreOrder: true);
        var edges = new List<PlanEdge>();
        foreach (var image in graph.Plan.Images)
        {
            var task = tasks[PlanExport.ArgoName(image.Name)];
            var dependencies = task["dependencies"]?.AsArray().Select(d => (string)d!).ToList() ?? [];
            dependencies.ShouldAllBe(d => tasks.ContainsKey(d), "a dependency names no task");
            dependencies.ToHashSet().ShouldBe(Parents(graph, image.Name).Select(PlanExport.ArgoName).ToHashSet());
            edges.AddRange(dependencies.Select(d => new PlanEdge(d, (string)task["name"]!, PlanEdgeKind.DependsOn, d, image.Location)));

            // Each parent's output parameter comes in as an argument, from a task it depends on.
            var template = templates[(string)task["template"]!];
            var arguments = task["arguments"]?["parameters"]?.AsArray().ToDictionary(p => (string)p!["name"]!, p => (string)p!["value"]!) ?? [];
            foreach (var (name, value) in arguments)
            {
                var from = ArgoOutput().Match(value);
                from.Success.ShouldBeTrue(value);
                dependencies.ShouldContain(from.Groups[1].Value);
                templates[(string)tasks[from.Groups[1].Value]["template"]!]["outputs"]!["parameters"]!.AsArray()
                    .Select(p => (string)p!["name"]!).ShouldContain(from.Groups[2].Value);
            }

            var inputs = template["inputs"]?["parameters"]?.AsArray().Select(p => (string)p!["name"]!).ToList() ?? [];
            inputs.ShouldBe(arguments.Keys, ignoreOrder: true);
            var script = (string)template["container"]!["args"]![0]!;
            foreach (var parent in graph.References(image.Name).Select(r => r.Parent).Distinct())
                script.ShouldContain($"docker pull \"{{{{inputs.parameters.parent-{PlanExport.ArgoName(parent)}}}}}\"");
            template["sidecars"]![0]!["securityContext"]!["privileged"]!.GetValue<bool>().ShouldBeTrue();
        }

        PlanGraph.FindCycle(tasks.Keys, edges).ShouldBeNull();
    }

    [Fact]
    public void The_validators_refuse_broken_pipelines()
    {
        // A check of the checks: what the schemas must catch, they do.
        var graph = Graph(PlanGraphTests.ExamplePlan);
        var gitlab = YamlJson.Convert(Export(graph, PlanExportTarget.GitLab))!.AsObject();
        gitlab["build:api"]!["needs"] = "build:runtime";
        SchemaValidation.Errors(ThirdPartySchemas.GitLabCiSchema, gitlab).ShouldNotBeEmpty();
        var unknownKey = YamlJson.Convert(Export(graph, PlanExportTarget.GitLab))!.AsObject();
        unknownKey["build:api"]!["scirpt"] = new JsonArray("true");
        SchemaValidation.Errors(ThirdPartySchemas.GitLabCiSchema, unknownKey).ShouldNotBeEmpty();

        var argo = YamlJson.Convert(Export(graph, PlanExportTarget.Argo))!.AsObject();
        argo["spec"]!["templates"]![0]!["dag"]!["tasks"]![1]!["dependencies"] = "base";
        ArgoErrors(argo).ShouldContain(e => e.Contains("dependencies", StringComparison.Ordinal));
        var privileged = YamlJson.Convert(Export(graph, PlanExportTarget.Argo))!.AsObject();
        privileged["spec"]!["templates"]![1]!["sidecars"]![0]!["securityContext"]!["privileged"] = "yes";
        ArgoErrors(privileged).ShouldContain(e => e.Contains("privileged", StringComparison.Ordinal));
    }

    [Fact]
    public void A_plan_without_a_registry_is_not_exported()
    {
        var graph = PlanGraph.Load(Path.Combine(PlanLoaderTests.DataDirectory, "valid", "diamond", "plan.yaml"));
        var e = Should.Throw<PlanException>(() => Export(graph, PlanExportTarget.GitLab));
        e.Message.ShouldStartWith("plan.yaml: the plan has no registry");
    }

    [Fact]
    public void Paths_outside_the_root_are_refused()
    {
        var graph = Graph(PlanGraphTests.ExamplePlan);
        var e = Should.Throw<PlanException>(() => PlanExport.Export(graph, new PlanExportOptions(PlanExportTarget.Argo, _temp)));
        e.Message.ShouldContain("is outside the export's root");
    }

    [Fact]
    public void The_example_exports_build_push_and_pin_by_digest()
    {
        var graph = Graph(PlanGraphTests.ExamplePlan);
        var gitlab = Export(graph, PlanExportTarget.GitLab);
        gitlab.ShouldContain("""
            build:worker:
              extends: .layertool-plan
              stage: plan-level-2
              needs:
                - job: build:base
                  artifacts: true
                - job: build:runtime
                  artifacts: true
              script:
                - docker pull "$PLAN_IMAGE_BASE"
                - docker tag "$PLAN_IMAGE_BASE" plan-example/base:1
                - docker pull "$PLAN_IMAGE_RUNTIME"
                - docker tag "$PLAN_IMAGE_RUNTIME" runtime:latest
                - layertool build -f examples/plan/services/worker.Dockerfile --target worker -t worker -t plan-example/worker:1 examples/plan/services
                - digest=$(layertool push worker "127.0.0.1:5000/plan-example/worker:plan-$CI_PIPELINE_ID")
                - layertool push worker 127.0.0.1:5000/plan-example/worker:1 >/dev/null
                - echo "127.0.0.1:5000/plan-example/worker@$digest" > /tmp/layertool-plan-image
                - echo "PLAN_IMAGE_WORKER=127.0.0.1:5000/plan-example/worker@$digest" > plan-worker.env
              artifacts:
                reports:
                  dotenv: plan-worker.env

            """.Replace("\r\n", "\n", StringComparison.Ordinal));
        gitlab.ShouldContain("--build-arg RUNTIME_VERSION=1.2");
        var argo = Export(graph, PlanExportTarget.Argo);
        argo.ShouldContain("generateName: plan-plan-");
        argo.ShouldContain("value: \"{{tasks.runtime.outputs.parameters.image}}\"");
    }

    /// <summary>The Argo validator's complaints about <paramref name="workflow"/> (empty: valid).</summary>
    private List<string> ArgoErrors(JsonNode workflow)
    {
        var file = Path.Combine(_temp, $"workflow-{Guid.NewGuid():N}.json");
        File.WriteAllText(file, workflow.ToJsonString());
        var (exit, stdout, stderr) = ThirdPartySchemas.Run("node", [ThirdPartySchemas.ArgoValidator, file], TimeSpan.FromMinutes(1));
        var errors = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
        if (exit != 0 && errors.Count == 0)
            throw new InvalidOperationException($"the Argo validator failed ({exit}): {stderr}");
        return exit == 0 ? [] : errors;
    }

    [GeneratedRegex(@"^\{\{tasks\.([a-z0-9-]+)\.outputs\.parameters\.([a-z0-9-]+)\}\}$")]
    private static partial Regex ArgoOutput();
}
