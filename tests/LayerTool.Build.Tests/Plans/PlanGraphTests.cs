using LayerTool.Build.Plans;

namespace LayerTool.Build.Tests.Plans;

public sealed class PlanGraphTests
{
    public static string ExamplePlan => Path.Combine(ThirdPartySchemas.RepoRoot, "examples", "plan", "plan.yaml");

    private static string Valid(string name) => Path.Combine(PlanLoaderTests.DataDirectory, "valid", name, "plan.yaml");

    [Fact]
    public void The_example_plan_is_base_then_runtime_then_two_services()
    {
        var graph = PlanGraph.Load(ExamplePlan);
        graph.Order.Select(i => i.Name).ShouldBe(["base", "runtime", "api", "worker"]);
        graph.Levels.Select(l => l.Select(i => i.Name).ToArray()).ShouldBe([["base"], ["runtime"], ["api", "worker"]]);
        graph.Parents("worker").Select(i => i.Name).ShouldBe(["base", "runtime"]);
        graph.Children("base").Select(i => i.Name).ShouldBe(["runtime", "worker"]);
        graph.Descendants("base").Select(i => i.Name).ShouldBe(["runtime", "api", "worker"]);
        graph.Descendants("api").ShouldBeEmpty();
        graph.Ancestors("api").Select(i => i.Name).ShouldBe(["base", "runtime"]);
        graph.Level("worker").ShouldBe(2);
        graph.Edges.Select(e => $"{e.Parent}->{e.Child} {e.Why} {e.Reference}").ShouldBe([
            "base->runtime FROM base",
            "runtime->api FROM runtime",
            "runtime->worker FROM runtime",
            "base->worker COPY --from plan-example/base:1",
        ]);
    }

    [Fact]
    public void References_say_where_the_Dockerfile_names_a_plan_image_as_written_and_as_expanded()
    {
        var graph = PlanGraph.Load(ExamplePlan);
        var worker = graph.References("worker");
        worker.Count.ShouldBe(2);
        worker[0].ShouldBe(new PlanReference("runtime", PlanEdgeKind.From, "runtime", "${RUNTIME}", 1, new LayerTool.Dockerfile.SourcePosition(6, 6)));
        worker[1].ShouldBe(new PlanReference("base", PlanEdgeKind.CopyFrom, "plan-example/base:1", "plan-example/base:1", 1, new LayerTool.Dockerfile.SourcePosition(7, 6)));
        graph.References("base").ShouldBeEmpty();
    }

    [Fact]
    public void Stage_names_shadow_images_and_unneeded_stages_make_no_edge()
    {
        var graph = PlanGraph.Load(Valid("args-and-stages"));
        graph.Parents("app").Select(i => i.Name).ShouldBe(["base"]);
        graph.References("app").Select(r => (r.Kind, r.Reference)).ShouldBe([(PlanEdgeKind.From, "base:latest"), (PlanEdgeKind.MountFrom, "base")]);
        graph.Levels.Count.ShouldBe(2);
    }

    [Fact]
    public void A_diamond_is_ordered_and_levelled()
    {
        var graph = PlanGraph.Load(Valid("diamond"));
        graph.Order.Select(i => i.Name).ShouldBe(["top", "left", "right", "bottom"]);
        graph.Levels.Select(l => l.Count).ShouldBe([1, 2, 1]);
        graph.Parents("bottom").Select(i => i.Name).ShouldBe(["left", "right", "top"]);
        graph.Edges.Where(e => e.Child == "bottom").Select(e => e.Kind).ShouldBe([PlanEdgeKind.From, PlanEdgeKind.CopyFrom, PlanEdgeKind.MountFrom]);
    }

    [Fact]
    public void FindCycle_names_the_cycle_and_the_edge_that_closes_it()
    {
        var at = new PlanLocation("plan.yaml", 1, 1);
        PlanEdge E(string p, string c) => new(p, c, PlanEdgeKind.DependsOn, p, at);
        PlanGraph.FindCycle(["a", "b", "c", "d"], [E("a", "b"), E("b", "c"), E("c", "d")]).ShouldBeNull();
        var cycle = PlanGraph.FindCycle(["a", "b", "c", "d"], [E("a", "b"), E("b", "c"), E("c", "b"), E("c", "d")]).ShouldNotBeNull();
        cycle.Names.ShouldBe(["b", "c", "b"]);
        cycle.Closing.ShouldBe(E("c", "b"));
    }

    [Fact]
    public void The_rewriter_pins_FROM_COPY_from_and_mount_from_and_keeps_the_rest()
    {
        var graph = PlanGraph.Load(Valid("diamond"));
        var text = File.ReadAllText(graph["bottom"].Dockerfile);
        var pinned = PlanDockerfileRewriter.Rewrite(text, graph.References("bottom"), parent => $"registry.example/{parent}@sha256:{new string('a', 64)}");
        pinned.ShouldBe($"FROM registry.example/left@sha256:{new string('a', 64)}\n"
            + $"COPY --from=registry.example/right@sha256:{new string('a', 64)} /right /right\n"
            + $"RUN --mount=from=registry.example/top@sha256:{new string('a', 64)},target=/t cat /t/top\n");
        // Only the parents the function maps are rewritten.
        PlanDockerfileRewriter.Rewrite(text, graph.References("bottom"), parent => parent == "right" ? "other" : null)
            .ShouldBe("FROM left\nCOPY --from=other /right /right\nRUN --mount=from=top,target=/t cat /t/top\n");
    }

    [Fact]
    public void The_rewriter_replaces_a_FROM_written_with_variables_by_its_value()
    {
        var graph = PlanGraph.Load(ExamplePlan);
        var text = File.ReadAllText(graph["worker"].Dockerfile);
        var pinned = PlanDockerfileRewriter.Rewrite(text, graph.References("worker"), parent => $"local/{parent}:pinned");
        pinned.ShouldContain("FROM local/runtime:pinned AS worker\n");
        pinned.ShouldContain("COPY --from=local/base:pinned /etc/motd /opt/app/motd\n");
        pinned.ShouldContain("COPY --from=tools /tools.txt");
        pinned.Replace("local/runtime:pinned", "${RUNTIME}", StringComparison.Ordinal).Replace("local/base:pinned", "plan-example/base:1", StringComparison.Ordinal).ShouldBe(text);
    }

    [Fact]
    public void The_rewriter_refuses_a_text_that_changed_since_it_was_read()
    {
        var graph = PlanGraph.Load(Valid("diamond"));
        var e = Should.Throw<PlanException>(() => PlanDockerfileRewriter.Rewrite("FROM busybox\n", graph.References("left"), _ => "x"));
        e.Message.ShouldContain("does not name top there");
    }
}
