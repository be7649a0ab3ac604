using System.Text;
using LayerTool.Build.Progress;

namespace LayerTool.Build.Tests.Progress;

public sealed class BuildKitStatusDecoderTests
{
    [Fact]
    public void Decodes_vertexes_statuses_and_logs_with_their_timestamps()
    {
        var bytes = Trace.Response(
            [Trace.Vertex("sha256:a", "[2/3] RUN echo hi", started: 1.5, completed: 2.25, inputs: ["sha256:base", "sha256:ctx"])],
            [Trace.Status("transferring context:", "sha256:a", current: 2048, total: 4096, timestamp: 2, started: 1.5, completed: 2.2)],
            [Trace.Log("sha256:a", 1.625, "hi\n", stream: 2)]);

        var update = BuildKitStatusDecoder.Decode(bytes);

        var v = update.Vertexes.ShouldHaveSingleItem();
        v.Digest.ShouldBe("sha256:a");
        v.Inputs.ShouldBe(["sha256:base", "sha256:ctx"]);
        v.Name.ShouldBe("[2/3] RUN echo hi");
        v.Cached.ShouldBeFalse();
        v.Started.ShouldBe(Trace.T0.AddSeconds(1.5));
        v.Completed.ShouldBe(Trace.T0.AddSeconds(2.25));
        v.Error.ShouldBe("");
        var s = update.Statuses.ShouldHaveSingleItem();
        (s.Id, s.Vertex, s.Current, s.Total).ShouldBe(("transferring context:", "sha256:a", 2048L, 4096L));
        s.Timestamp.ShouldBe(Trace.T0.AddSeconds(2));
        s.Completed.ShouldBe(Trace.T0.AddSeconds(2.2));
        var l = update.Logs.ShouldHaveSingleItem();
        (l.Vertex, l.Stream, l.Timestamp).ShouldBe(("sha256:a", 2L, Trace.T0.AddSeconds(1.625)));
        Encoding.UTF8.GetString(l.Message.Span).ShouldBe("hi\n");
    }

    [Fact]
    public void Skips_unknown_fields_of_every_wire_type()
    {
        var vertex = Trace.Vertex("sha256:b", "x", cached: true, error: "boom")
            .Fixed32(20, 7).Fixed64(21, 9).Varint(22, 300).String(23, "future field");
        var response = new ProtoWriter().Message(1, vertex).Message(4, new ProtoWriter().String(1, "a warning")).Varint(9, 1).ToArray();

        var update = BuildKitStatusDecoder.Decode(response);

        var v = update.Vertexes.ShouldHaveSingleItem();
        (v.Digest, v.Name, v.Cached, v.Error).ShouldBe(("sha256:b", "x", true, "boom"));
        update.Statuses.ShouldBeEmpty();
        update.Logs.ShouldBeEmpty();
    }

    [Fact]
    public void Decodes_the_base64_of_a_trace_aux()
    {
        var bytes = Trace.Response([Trace.Vertex("sha256:c", "exporting to image")]);
        BuildKitStatusDecoder.DecodeBase64(Convert.ToBase64String(bytes)).Vertexes.ShouldHaveSingleItem().Name.ShouldBe("exporting to image");
    }

    [Fact]
    public void A_truncated_message_is_a_format_error()
    {
        var bytes = Trace.Response([Trace.Vertex("sha256:d", "[1/1] FROM busybox")]);
        Should.Throw<FormatException>(() => BuildKitStatusDecoder.Decode(bytes.AsSpan(0, bytes.Length - 3)));
    }

    [Fact]
    public void A_varint_of_more_than_ten_bytes_is_a_format_error()
    {
        byte[] bytes = [0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01];
        Should.Throw<FormatException>(() => BuildKitStatusDecoder.Decode(bytes));
    }

    [Fact]
    public void Increments_merge_by_vertex_digest()
    {
        var trace = new BuildTrace();
        trace.Apply(BuildKitStatusDecoder.Decode(Trace.Response([Trace.Vertex("sha256:a", "[1/2] FROM busybox")])));
        trace.Apply(BuildKitStatusDecoder.Decode(Trace.Response([Trace.Vertex("sha256:b", "[2/2] RUN true", started: 1)])));
        trace.Apply(BuildKitStatusDecoder.Decode(Trace.Response([Trace.Vertex("sha256:a", "[1/2] FROM busybox", cached: true, started: 0, completed: 0)])));
        trace.Apply(BuildKitStatusDecoder.Decode(Trace.Response([Trace.Vertex("sha256:b", "[2/2] RUN true", started: 1, completed: 3)])));

        trace.Vertices.Select(v => (v.Index, v.Digest)).ShouldBe([(1, "sha256:a"), (2, "sha256:b")]);
        trace.Find("sha256:b")!.Started.ShouldBe(Trace.T0.AddSeconds(1));
        trace.Find("sha256:b")!.Completed.ShouldBe(Trace.T0.AddSeconds(3));
        trace.StepCounts().ShouldBe((2, 1));
    }
}
