using LayerTool.Build.Progress;

namespace LayerTool.Build.Tests.Progress;

public sealed class PlainProgressTests
{
    private readonly StringWriter _out = new() { NewLine = "\n" };
    private readonly BuildTrace _trace = new();
    private readonly PlainProgress _plain;

    public PlainProgressTests() => _plain = new PlainProgress(_out);

    private void Send(byte[] response)
    {
        var update = BuildKitStatusDecoder.Decode(response);
        _plain.OnStatus(_trace, update, _trace.Apply(update));
    }

    [Fact]
    public void Prints_docker_plain_blocks_for_a_cached_base_a_run_with_output_and_the_export()
    {
        Send(Trace.Response([Trace.Vertex("sha256:meta", "[internal] load metadata for docker.io/library/busybox:latest", started: 0)]));
        Send(Trace.Response([Trace.Vertex("sha256:meta", "[internal] load metadata for docker.io/library/busybox:latest", started: 0, completed: 0.04)]));
        Send(Trace.Response([Trace.Vertex("sha256:from", "[1/2] FROM docker.io/library/busybox:latest", cached: true, started: 0.1, completed: 0.1)]));
        Send(Trace.Response([Trace.Vertex("sha256:run", "[2/2] RUN echo hello && echo two", started: 0.2)]));
        Send(Trace.Response(logs: [Trace.Log("sha256:run", 0.313, "hello\n")]));
        Send(Trace.Response(logs: [Trace.Log("sha256:run", 0.314, "tw")]));
        Send(Trace.Response(logs: [Trace.Log("sha256:run", 0.315, "o\n")]));
        Send(Trace.Response([Trace.Vertex("sha256:run", "[2/2] RUN echo hello && echo two", started: 0.2, completed: 0.34)]));
        Send(Trace.Response([Trace.Vertex("sha256:exp", "exporting to image", started: 0.4)],
            [Trace.Status("exporting layers", "sha256:exp", timestamp: 0.5, started: 0.4, completed: 0.5)]));
        Send(Trace.Response([Trace.Vertex("sha256:exp", "exporting to image", started: 0.4, completed: 0.52)],
            [Trace.Status("writing image sha256:0123", "sha256:exp", timestamp: 0.51, started: 0.51, completed: 0.51)]));
        _plain.Complete();

        _out.ToString().ShouldBe("""
            #1 [internal] load metadata for docker.io/library/busybox:latest
            #1 sha256:meta
            #1 DONE 0.0s

            #2 [1/2] FROM docker.io/library/busybox:latest
            #2 sha256:from
            #2 CACHED

            #3 [2/2] RUN echo hello && echo two
            #3 sha256:run
            #3 0.113 hello
            #3 0.114 two
            #3 DONE 0.1s

            #4 exporting to image
            #4 sha256:exp
            #4 exporting layers 0.1s done
            #4 writing image sha256:0123 done
            #4 DONE 0.1s

            """.Replace("\r\n", "\n"));
    }

    [Fact]
    public void A_failing_step_ends_with_its_error_and_a_cancelled_one_with_CANCELED()
    {
        Send(Trace.Response([Trace.Vertex("sha256:run", "[2/3] RUN false", started: 1)]));
        Send(Trace.Response([Trace.Vertex("sha256:run", "[2/3] RUN false", started: 1, completed: 1.2, error: "executor failed running [/bin/sh -c false]: exit code: 1"),
            Trace.Vertex("sha256:other", "[3/3] RUN sleep 9", started: 1, completed: 1.2, error: "context canceled")]));

        _out.ToString().ShouldBe("""
            #1 [2/3] RUN false
            #1 sha256:run
            #1 ERROR: executor failed running [/bin/sh -c false]: exit code: 1

            #2 [3/3] RUN sleep 9
            #2 sha256:other
            #2 CANCELED

            """.Replace("\r\n", "\n"));
        _trace.FirstError!.Name.ShouldBe("[2/3] RUN false");
    }

    [Fact]
    public void Another_vertex_interrupting_a_running_one_marks_it_with_dots()
    {
        Send(Trace.Response([Trace.Vertex("sha256:a", "[a 2/2] RUN sleep 1", started: 0)]));
        Send(Trace.Response(logs: [Trace.Log("sha256:a", 0.5, "a says\n")]));
        Send(Trace.Response([Trace.Vertex("sha256:b", "[b 2/2] RUN true", started: 0.6, completed: 0.7)]));

        _out.ToString().ShouldBe("""
            #1 [a 2/2] RUN sleep 1
            #1 sha256:a
            #1 0.500 a says
            #1 ...

            #2 [b 2/2] RUN true
            #2 sha256:b
            #2 DONE 0.1s

            """.Replace("\r\n", "\n"));
    }

    [Theory]
    [InlineData(2, "2B")]
    [InlineData(999, "999B")]
    [InlineData(1234, "1.23kB")]
    [InlineData(45_600_000, "45.6MB")]
    public void Sizes_read_as_docker_prints_them(long bytes, string expected) => PlainProgress.HumanBytes(bytes).ShouldBe(expected);
}
