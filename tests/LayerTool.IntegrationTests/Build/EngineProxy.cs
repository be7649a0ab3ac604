using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace LayerTool.IntegrationTests.Build;

/// <summary>
/// A unix-socket proxy between a <c>layertool</c> process and the real engine, so a test can make the engine
/// "go away" for that process alone (<see cref="Cut"/>) without touching the shared engine. It also reads the
/// requests going through and records the names of the containers created, which tells the test which
/// build containers belong to the process under test.
/// </summary>
public sealed partial class EngineProxy : IDisposable
{
    private readonly string _upstream;
    private readonly Socket _listener;
    private readonly List<Socket> _sockets = [];
    private readonly Lock _lock = new();
    private readonly ConcurrentQueue<string> _created = new();
    private readonly Task _accepting;
    private readonly TaskCompletionSource _thawed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _closed;
    private volatile bool _frozen;

    /// <param name="upstreamSocketPath">The real engine's unix socket.</param>
    public EngineProxy(string upstreamSocketPath)
    {
        _upstream = upstreamSocketPath;
        // A short path: sun_path holds 108 bytes.
        SocketPath = Path.Combine(Path.GetTempPath(), $"lt-proxy-{Guid.NewGuid().ToString("N")[..12]}.sock");
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(SocketPath));
        _listener.Listen(16);
        _accepting = AcceptLoopAsync();
    }

    public string SocketPath { get; }

    /// <summary>The DOCKER_HOST that goes through this proxy.</summary>
    public string DockerHost => "unix://" + SocketPath;

    /// <summary>Names of the containers created through the proxy (<c>POST /containers/create?name=...</c>), in order.</summary>
    public IReadOnlyList<string> CreatedContainers => [.. _created];

    /// <summary>Connections accepted so far.</summary>
    public int Connections { get; private set; }

    /// <summary>The engine hangs: connections stay open (new ones are accepted) but nothing goes through any more.</summary>
    public void Freeze() => _frozen = true;

    /// <summary>The engine goes away: no new connection is accepted and every open one is closed.</summary>
    public void Cut()
    {
        _thawed.TrySetResult();
        Socket[] open;
        lock (_lock)
        {
            _closed = true;
            open = [.. _sockets];
            _sockets.Clear();
        }
        _listener.Dispose();
        foreach (var s in open) s.Dispose();
    }

    public void Dispose()
    {
        Cut();
        _accepting.Wait(TimeSpan.FromSeconds(10));
        File.Delete(SocketPath);
    }

    private async Task AcceptLoopAsync()
    {
        while (true)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }
            var upstream = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await upstream.ConnectAsync(new UnixDomainSocketEndPoint(_upstream));
            }
            catch (SocketException)
            {
                client.Dispose();
                upstream.Dispose();
                continue;
            }
            lock (_lock)
            {
                if (_closed)
                {
                    client.Dispose();
                    upstream.Dispose();
                    return;
                }
                _sockets.Add(client);
                _sockets.Add(upstream);
                Connections++;
            }
            _ = PumpAsync(client, upstream, scan: true);
            _ = PumpAsync(upstream, client, scan: false);
        }
    }

    private async Task PumpAsync(Socket from, Socket to, bool scan)
    {
        var buffer = new byte[65536];
        var carry = "";
        try
        {
            while (true)
            {
                var n = await from.ReceiveAsync(buffer, SocketFlags.None);
                if (n == 0)
                {
                    to.Shutdown(SocketShutdown.Send);
                    return;
                }
                if (scan)
                {
                    // Latin-1 keeps one char per byte; the tail is carried over so a request line split
                    // across two reads is still seen.
                    var text = carry + Encoding.Latin1.GetString(buffer, 0, n);
                    foreach (Match m in CreateRequest().Matches(text))
                        if (!_created.Contains(m.Groups[1].Value)) _created.Enqueue(m.Groups[1].Value);
                    carry = text.Length > 256 ? text[^256..] : text;
                }
                if (_frozen) await _thawed.Task; // until Cut: then the send below fails
                await to.SendAsync(buffer.AsMemory(0, n), SocketFlags.None);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // One side closed: close the other, as a dying engine would.
            from.Dispose();
            to.Dispose();
        }
    }

    [GeneratedRegex(@"/containers/create\?name=([A-Za-z0-9_.-]+)[ &]")]
    private static partial Regex CreateRequest();
}
