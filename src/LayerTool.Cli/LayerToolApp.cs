using System.CommandLine;
using LayerTool.Cli.Commands;

namespace LayerTool.Cli;

/// <summary>Entry point: builds the command tree and runs it.</summary>
public static class LayerToolApp
{
    public static int Run(string[] args)
    {
        var root = new RootCommand("layertool: build and reshape Docker images.")
        {
            DindCommand.Create(),
        };
        // Cleanup after Ctrl-C (stopping a dind container, removing build containers) needs more than
        // the default two seconds.
        var invocation = new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(60) };
        return root.Parse(args).Invoke(invocation);
    }
}
