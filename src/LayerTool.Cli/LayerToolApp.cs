using System.CommandLine;
using LayerTool.Build;
using LayerTool.Cli.Commands;
using LayerTool.Dockerfile;

namespace LayerTool.Cli;

/// <summary>Entry point: builds the command tree and runs it. Errors a user can fix print as <c>layertool: message</c> (exit 1).</summary>
public static class LayerToolApp
{
    public static RootCommand CreateRoot(TextWriter output)
    {
        var root = new RootCommand("layertool: build and reshape Docker images (Dockerfiles with TAG and COMPRESS, squash onto any base)")
        {
            BuildCommand.Create(output),
        };
        return root;
    }

    public static int Run(string[] args)
    {
        var root = CreateRoot(Console.Out);
        try
        {
            return root.Parse(args).InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false }).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is BuildException or EngineException or DockerfileException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"layertool: {e.Message}");
            return 1;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("layertool: cancelled");
            return 1;
        }
    }
}
