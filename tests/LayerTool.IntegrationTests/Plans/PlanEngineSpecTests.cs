using LayerTool.Docker.Plans;

namespace LayerTool.IntegrationTests.Plans;

public sealed class PlanEngineSpecTests
{
    [Fact]
    public void An_engine_with_a_scheme_is_a_url_and_any_other_is_a_docker_context()
    {
        var url = PlanEngineSpec.Parse("unix:///run/b.sock");
        url.Settings!.Endpoint.ShouldBe(new Uri("unix:///run/b.sock"));
        url.Settings.Context.ShouldBeNull();
        var context = PlanEngineSpec.Parse("ci-box");
        context.Settings!.Context.ShouldBe("ci-box");
        context.Settings.Endpoint.ShouldBeNull();
        context.Name.ShouldBe("ci-box");
    }
}
