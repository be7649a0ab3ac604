using System.Net.Sockets;
using Docker.DotNet;

namespace LayerTool.Docker;

/// <summary>
/// Engine failures in words a user can act on, shared by every adapter in this project (builds, images,
/// squash): the engine's own message for a refusal, and what happened to the connection when it was lost.
/// </summary>
public static class EngineErrors
{
    /// <summary>The engine's error: the <c>message</c> of its JSON body, else the body, else the exception's message; one line.</summary>
    public static string Message(DockerApiException e)
    {
        var body = e.ResponseBody?.Trim();
        if (string.IsNullOrEmpty(body)) return OneLine(e.Message);
        if (body.StartsWith('{'))
        {
            try
            {
                using var json = System.Text.Json.JsonDocument.Parse(body);
                if (json.RootElement.TryGetProperty("message", out var message) && message.GetString() is { Length: > 0 } text) return OneLine(text);
            }
            catch (System.Text.Json.JsonException)
            {
                // Not JSON after all: the body as it is.
            }
        }
        return OneLine(body);
    }

    /// <summary>
    /// What failed, in words. The HTTP stack's own messages ("The requested failed, see inner exception for
    /// details", "Invalid chunk header encountered", "Sequence contains no elements") say nothing to a user;
    /// a unix socket whose file is gone reports "Cannot assign requested address".
    /// </summary>
    public static string Cause(Exception e)
    {
        for (var x = e; x is not null; x = x.InnerException)
        {
            switch (x)
            {
                case SocketException { SocketErrorCode: SocketError.ConnectionRefused or SocketError.AddressNotAvailable
                                                        or SocketError.HostUnreachable or SocketError.NetworkUnreachable }:
                    return "the engine no longer accepts connections";
                case SocketException { SocketErrorCode: SocketError.ConnectionReset or SocketError.ConnectionAborted
                                                        or SocketError.Shutdown or SocketError.NotConnected }:
                    return "the engine closed the connection";
                case SocketException socket:
                    return OneLine(socket.Message);
                case TimeoutException:
                    return "no answer in time";
            }
        }
        return "the connection failed or closed in the middle of a response";
    }

    private static string OneLine(string text) => string.Join(' ', text.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
