namespace LayerTool.Docker;

/// <summary>
/// The Docker engine could not be reached or refused a request. The message says what LayerTool was
/// doing and what the engine answered; the inner exception keeps the transport detail.
/// </summary>
public sealed class EngineException : Exception
{
    public EngineException(string message) : base(message) { }

    public EngineException(string message, Exception inner) : base(message, inner) { }

    public EngineException() { }
}
