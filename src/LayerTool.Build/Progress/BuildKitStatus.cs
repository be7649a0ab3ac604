namespace LayerTool.Build.Progress;

/// <summary>One increment of a BuildKit vertex (moby.buildkit.v1.Vertex): only the fields it sets are new.</summary>
/// <param name="Digest">The vertex digest: the key increments are merged by.</param>
/// <param name="Inputs">Digests of the vertices it depends on.</param>
/// <param name="Name">What docker prints: <c>[2/3] RUN echo hi</c>, <c>[internal] load metadata for ...</c>.</param>
/// <param name="Cached">Taken from the cache.</param>
/// <param name="Started">When it started, if it has.</param>
/// <param name="Completed">When it ended, if it has.</param>
/// <param name="Error">Why it failed ("" when it did not).</param>
public sealed record VertexUpdate(string Digest, IReadOnlyList<string> Inputs, string Name, bool Cached, DateTimeOffset? Started, DateTimeOffset? Completed, string Error);

/// <summary>A sub-task of a vertex (moby.buildkit.v1.VertexStatus): a layer being pulled, an export step.</summary>
public sealed record VertexStatusUpdate(string Id, string Vertex, string Name, long Current, long Total, DateTimeOffset? Timestamp, DateTimeOffset? Started, DateTimeOffset? Completed);

/// <summary>Output of a vertex (moby.buildkit.v1.VertexLog); <paramref name="Stream"/> 1 is stdout, 2 stderr.</summary>
public sealed record VertexLogUpdate(string Vertex, DateTimeOffset? Timestamp, long Stream, ReadOnlyMemory<byte> Message);

/// <summary>One <c>moby.buildkit.v1.StatusResponse</c>: the increments the engine sent in one trace message.</summary>
public sealed record StatusUpdate(IReadOnlyList<VertexUpdate> Vertexes, IReadOnlyList<VertexStatusUpdate> Statuses, IReadOnlyList<VertexLogUpdate> Logs)
{
    public static StatusUpdate Empty { get; } = new([], [], []);
}

/// <summary>
/// Decodes the engine's <c>moby.buildkit.trace</c> messages (moby/buildkit api/services/control/control.proto).
/// Field 4 (warnings, newer engines) and anything unknown are skipped.
/// </summary>
public static class BuildKitStatusDecoder
{
    /// <summary>Decodes the base64 text of a trace aux.</summary>
    public static StatusUpdate DecodeBase64(string base64)
    {
        ArgumentNullException.ThrowIfNull(base64);
        return Decode(Convert.FromBase64String(base64));
    }

    public static StatusUpdate Decode(ReadOnlySpan<byte> message)
    {
        var vertexes = new List<VertexUpdate>();
        var statuses = new List<VertexStatusUpdate>();
        var logs = new List<VertexLogUpdate>();
        var reader = new ProtoReader(message);
        while (reader.TryReadTag(out var field, out var wire))
        {
            if (wire != ProtoReader.WireType.LengthDelimited)
            {
                reader.Skip(wire);
                continue;
            }
            var body = reader.ReadLengthDelimited();
            switch (field)
            {
                case 1: vertexes.Add(Vertex(body)); break;
                case 2: statuses.Add(Status(body)); break;
                case 3: logs.Add(Log(body)); break;
            }
        }
        return new StatusUpdate(vertexes, statuses, logs);
    }

    private static VertexUpdate Vertex(ReadOnlySpan<byte> body)
    {
        var reader = new ProtoReader(body);
        string digest = "", name = "", error = "";
        var inputs = new List<string>();
        var cached = false;
        DateTimeOffset? started = null, completed = null;
        while (reader.TryReadTag(out var field, out var wire))
        {
            switch (field, wire)
            {
                case (1, ProtoReader.WireType.LengthDelimited): digest = reader.ReadString(); break;
                case (2, ProtoReader.WireType.LengthDelimited): inputs.Add(reader.ReadString()); break;
                case (3, ProtoReader.WireType.LengthDelimited): name = reader.ReadString(); break;
                case (4, ProtoReader.WireType.Varint): cached = reader.ReadBool(); break;
                case (5, ProtoReader.WireType.LengthDelimited): started = ProtoReader.ReadTimestamp(reader.ReadLengthDelimited()); break;
                case (6, ProtoReader.WireType.LengthDelimited): completed = ProtoReader.ReadTimestamp(reader.ReadLengthDelimited()); break;
                case (7, ProtoReader.WireType.LengthDelimited): error = reader.ReadString(); break;
                default: reader.Skip(wire); break;
            }
        }
        return new VertexUpdate(digest, inputs, name, cached, started, completed, error);
    }

    private static VertexStatusUpdate Status(ReadOnlySpan<byte> body)
    {
        var reader = new ProtoReader(body);
        string id = "", vertex = "", name = "";
        long current = 0, total = 0;
        DateTimeOffset? timestamp = null, started = null, completed = null;
        while (reader.TryReadTag(out var field, out var wire))
        {
            switch (field, wire)
            {
                case (1, ProtoReader.WireType.LengthDelimited): id = reader.ReadString(); break;
                case (2, ProtoReader.WireType.LengthDelimited): vertex = reader.ReadString(); break;
                case (3, ProtoReader.WireType.LengthDelimited): name = reader.ReadString(); break;
                case (4, ProtoReader.WireType.Varint): current = reader.ReadInt64(); break;
                case (5, ProtoReader.WireType.Varint): total = reader.ReadInt64(); break;
                case (6, ProtoReader.WireType.LengthDelimited): timestamp = ProtoReader.ReadTimestamp(reader.ReadLengthDelimited()); break;
                case (7, ProtoReader.WireType.LengthDelimited): started = ProtoReader.ReadTimestamp(reader.ReadLengthDelimited()); break;
                case (8, ProtoReader.WireType.LengthDelimited): completed = ProtoReader.ReadTimestamp(reader.ReadLengthDelimited()); break;
                default: reader.Skip(wire); break;
            }
        }
        return new VertexStatusUpdate(id, vertex, name, current, total, timestamp, started, completed);
    }

    private static VertexLogUpdate Log(ReadOnlySpan<byte> body)
    {
        var reader = new ProtoReader(body);
        var vertex = "";
        long stream = 0;
        DateTimeOffset? timestamp = null;
        ReadOnlyMemory<byte> message = ReadOnlyMemory<byte>.Empty;
        while (reader.TryReadTag(out var field, out var wire))
        {
            switch (field, wire)
            {
                case (1, ProtoReader.WireType.LengthDelimited): vertex = reader.ReadString(); break;
                case (2, ProtoReader.WireType.LengthDelimited): timestamp = ProtoReader.ReadTimestamp(reader.ReadLengthDelimited()); break;
                case (3, ProtoReader.WireType.Varint): stream = reader.ReadInt64(); break;
                case (4, ProtoReader.WireType.LengthDelimited): message = reader.ReadLengthDelimited().ToArray(); break;
                default: reader.Skip(wire); break;
            }
        }
        return new VertexLogUpdate(vertex, timestamp, stream, message);
    }
}
