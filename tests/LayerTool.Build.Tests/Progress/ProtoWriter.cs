using System.Text;

namespace LayerTool.Build.Tests.Progress;

/// <summary>A tiny protobuf encoder for the tests: builds the StatusResponse bytes the engine would send.</summary>
internal sealed class ProtoWriter
{
    private readonly MemoryStream _bytes = new();

    public byte[] ToArray() => _bytes.ToArray();

    public ProtoWriter Varint(int field, ulong value)
    {
        Key(field, 0);
        WriteVarint(value);
        return this;
    }

    public ProtoWriter Bytes(int field, ReadOnlySpan<byte> value)
    {
        Key(field, 2);
        WriteVarint((ulong)value.Length);
        _bytes.Write(value);
        return this;
    }

    public ProtoWriter String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

    public ProtoWriter Message(int field, ProtoWriter message) => Bytes(field, message.ToArray());

    public ProtoWriter Fixed32(int field, uint value)
    {
        Key(field, 5);
        Span<byte> b = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        _bytes.Write(b);
        return this;
    }

    public ProtoWriter Fixed64(int field, ulong value)
    {
        Key(field, 1);
        Span<byte> b = stackalloc byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        _bytes.Write(b);
        return this;
    }

    public static ProtoWriter Timestamp(DateTimeOffset at)
    {
        var ticks = (at - DateTimeOffset.UnixEpoch).Ticks;
        return new ProtoWriter().Varint(1, (ulong)(ticks / TimeSpan.TicksPerSecond)).Varint(2, (ulong)(ticks % TimeSpan.TicksPerSecond * 100));
    }

    private void Key(int field, int wire) => WriteVarint((ulong)((field << 3) | wire));

    private void WriteVarint(ulong value)
    {
        while (value >= 0x80)
        {
            _bytes.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }
        _bytes.WriteByte((byte)value);
    }
}

/// <summary>StatusResponse messages as the engine encodes them (control.proto field numbers).</summary>
internal static class Trace
{
    public static readonly DateTimeOffset T0 = new(2026, 12, 7, 1, 0, 0, TimeSpan.Zero);

    public static ProtoWriter Vertex(string digest, string? name = null, bool cached = false, double? started = null, double? completed = null, string? error = null, params string[] inputs)
    {
        var v = new ProtoWriter().String(1, digest);
        foreach (var i in inputs) v.String(2, i);
        if (name is not null) v.String(3, name);
        if (cached) v.Varint(4, 1);
        if (started is { } s) v.Message(5, ProtoWriter.Timestamp(T0.AddSeconds(s)));
        if (completed is { } c) v.Message(6, ProtoWriter.Timestamp(T0.AddSeconds(c)));
        if (error is not null) v.String(7, error);
        return v;
    }

    public static ProtoWriter Status(string id, string vertex, long current = 0, long total = 0, double? timestamp = null, double? started = null, double? completed = null)
    {
        var s = new ProtoWriter().String(1, id).String(2, vertex);
        if (current != 0) s.Varint(4, (ulong)current);
        if (total != 0) s.Varint(5, (ulong)total);
        if (timestamp is { } t) s.Message(6, ProtoWriter.Timestamp(T0.AddSeconds(t)));
        if (started is { } st) s.Message(7, ProtoWriter.Timestamp(T0.AddSeconds(st)));
        if (completed is { } c) s.Message(8, ProtoWriter.Timestamp(T0.AddSeconds(c)));
        return s;
    }

    public static ProtoWriter Log(string vertex, double at, string text, int stream = 1) =>
        new ProtoWriter().String(1, vertex).Message(2, ProtoWriter.Timestamp(T0.AddSeconds(at))).Varint(3, (ulong)stream).String(4, text);

    public static byte[] Response(IEnumerable<ProtoWriter>? vertexes = null, IEnumerable<ProtoWriter>? statuses = null, IEnumerable<ProtoWriter>? logs = null)
    {
        var r = new ProtoWriter();
        foreach (var v in vertexes ?? []) r.Message(1, v);
        foreach (var s in statuses ?? []) r.Message(2, s);
        foreach (var l in logs ?? []) r.Message(3, l);
        return r.ToArray();
    }
}
