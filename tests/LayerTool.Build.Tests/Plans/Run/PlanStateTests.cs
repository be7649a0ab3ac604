using LayerTool.Build.Plans.Run;

namespace LayerTool.Build.Tests.Plans.Run;

public sealed class PlanStateTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("layertool-planstate-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void The_record_survives_a_save_and_a_load()
    {
        var path = PlanState.PathFor(_root, "/work/plans/plan.yaml");
        path.ShouldStartWith(_root);
        PlanState.PathFor(_root, "/work/plans/plan.yaml").ShouldBe(path, "the same plan, the same record");
        PlanState.PathFor(_root, "/work/other/plan.yaml").ShouldNotBe(path);
        var state = PlanState.Load(path);
        state.Get("base").ShouldBeNull();
        state.Set("base", new PlanStateEntry("sha256:in", "sha256:id", "127.0.0.1:5000/p/base@sha256:abc"));
        state.Set("app", new PlanStateEntry("sha256:in2", "sha256:id2", null));
        state.Save();
        var again = PlanState.Load(path);
        again.Get("base").ShouldBe(new PlanStateEntry("sha256:in", "sha256:id", "127.0.0.1:5000/p/base@sha256:abc"));
        again.Get("app")!.Pushed.ShouldBeNull();
    }

    [Fact]
    public void A_damaged_record_reads_as_empty()
    {
        var path = Path.Combine(_root, "broken.json");
        File.WriteAllText(path, "{ not json");
        PlanState.Load(path).Get("base").ShouldBeNull();
    }
}
