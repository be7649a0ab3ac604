namespace LayerTool.Cli.Commands;

/// <summary><c>plan run</c> and <c>plan status</c> (<see cref="PlanRunCommands"/>).</summary>
internal sealed partial class PlanCommand
{
    partial void AddRunCommands(CliContext context, Func<string, string?> environment)
    {
        var commands = new PlanRunCommands(context, environment);
        Subcommands.Add(commands.Run);
        Subcommands.Add(commands.Status);
    }
}
