using System.Text.Json;
using LayerTool.Build.Plans.Run;

namespace LayerTool.Build.Tests.Plans.Run;

public sealed class PlanProgressTests
{
    private static readonly string[] Engines = ["local", "dind-1"];

    [Fact]
    public void Plain_output_is_one_line_per_state_change_with_engine_and_time()
    {
        var text = new StringWriter();
        using (var progress = new PlanProgress(text, PlanProgressStyle.Plain, ["base", "app"], Engines))
        {
            progress.Report(new PlanEvent("base", PlanImageState.Running, 1, TimeSpan.Zero, null));
            progress.Report(new PlanEvent("base", PlanImageState.Built, 1, TimeSpan.FromSeconds(2.4), "3 steps, 0 cached"));
            progress.Report(new PlanEvent("app", PlanImageState.Failed, 0, TimeSpan.FromSeconds(1), "RUN false: exit code 1"));
        }
        var lines = text.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines.ShouldBe([
            "base: running on dind-1",
            "base: built on dind-1 in 2.4s (3 steps, 0 cached)",
            "app: failed on local in 1.0s: RUN false: exit code 1",
        ]);
    }

    [Fact]
    public void Json_output_is_one_object_per_state_change()
    {
        var text = new StringWriter();
        using (var progress = new PlanProgress(text, PlanProgressStyle.Json, ["base"], Engines))
            progress.Report(new PlanEvent("base", PlanImageState.UpToDate, 0, TimeSpan.FromMilliseconds(40), "up to date"));
        using var json = JsonDocument.Parse(text.ToString().Trim());
        json.RootElement.GetProperty("image").GetString().ShouldBe("base");
        json.RootElement.GetProperty("state").GetString().ShouldBe("up to date");
        json.RootElement.GetProperty("engine").GetString().ShouldBe("local");
        json.RootElement.GetProperty("seconds").GetDouble().ShouldBe(0.04);
    }

    [Fact]
    public void On_a_terminal_each_image_has_one_line_rewritten_in_place()
    {
        var text = new StringWriter();
        using (var progress = new PlanProgress(text, PlanProgressStyle.Tty, ["base", "app"], Engines))
        {
            progress.Report(new PlanEvent("base", PlanImageState.Running, 0, TimeSpan.Zero, null));
            progress.Report(new PlanEvent("base", PlanImageState.Built, 0, TimeSpan.FromSeconds(1), null));
        }
        var output = text.ToString();
        // The first drawing prints two lines; every redraw goes up two lines first.
        output.ShouldContain("\x1b[2A");
        var last = output[output.LastIndexOf("\x1b[2A", StringComparison.Ordinal)..];
        last.ShouldContain("base");
        last.ShouldContain("built");
        last.ShouldContain("app");
        last.ShouldContain("waiting");
        last.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length.ShouldBe(2);
    }

    [Fact]
    public void The_summary_lists_built_up_to_date_failed_and_not_started_with_the_first_error_line()
    {
        var summary = new PlanRunSummary(
        [
            new PlanJobResult("base", PlanImageState.UpToDate, new PlanJobOutput("sha256:0123456789abcdef0123", false, null), 0, TimeSpan.Zero, "up to date", null),
            new PlanJobResult("app", PlanImageState.Failed, null, 1, TimeSpan.FromSeconds(3), "RUN make: exit code 2", new BuildException("RUN make: exit code 2\nmore")),
            new PlanJobResult("web", PlanImageState.NotStarted, null, null, TimeSpan.Zero, "app failed", null),
            new PlanJobResult("db", PlanImageState.Built, new PlanJobOutput("sha256:fedcba9876543210fedc", true, 1), 1, TimeSpan.FromSeconds(4), null, null),
        ], TimeSpan.FromSeconds(7), false);
        var text = PlanProgress.Summary(summary, Engines);
        text.ShouldStartWith("plan: 1 built, 1 up to date, 1 failed, 1 not started in 7.0s\n");
        text.ShouldContain("    app: RUN make: exit code 2\n");
        text.ShouldContain("    web: app failed\n");
        text.ShouldContain("    db (4.0s on dind-1) fedcba987654\n");
        text.ShouldContain("    base 0123456789ab\n");
        using var json = JsonDocument.Parse(PlanProgress.SummaryJson(summary, Engines));
        json.RootElement.GetProperty("summary").GetString().ShouldBe("failed");
        json.RootElement.GetProperty("images").GetArrayLength().ShouldBe(4);
    }
}
