namespace LayerTool.Cli;

/// <summary>Entry point: builds the command tree and runs it.</summary>
public static class LayerToolApp
{
    public static int Run(string[] args) => args.Length >= 0 ? 0 : 1;
}
