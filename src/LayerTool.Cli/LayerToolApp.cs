using System.CommandLine;
using System.CommandLine.Invocation;
using System.Reflection;
using System.Runtime.InteropServices;
using LayerTool.Cli.Commands;
using LayerTool.Docker.Sweep;

namespace LayerTool.Cli;

/// <summary>
/// Entry point: builds the command tree and runs it. To add a verb, write <c>Commands/XCommand.cs</c> (a
/// <see cref="Command"/> that declares its options, binds them into one options record and calls one library
/// method through <see cref="CommandErrors.RunAsync"/>) and add it in <see cref="CreateRootCommand"/>.
/// </summary>
public static class LayerToolApp
{
    /// <summary>The root command with every verb; <c>--help</c> and <c>--version</c> come with it.</summary>
    public static RootCommand CreateRootCommand(CliContext context, Func<string, string?>? environment = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        environment ??= Environment.GetEnvironmentVariable;
        var root = new RootCommand("layertool: build Docker images with TAG and COMPRESS, and squash images onto any base.")
        {
            new ParseCommand(context),
            new LintCommand(context, environment),
            new BuildCommand(context, environment),
            DindCommand.Create(context),
            new SquashCommand(context, environment),
            new RebaseCommand(context, environment),
            new DiffCommand(context),
            new LayersCommand(context),
            new PullCommand(context, environment),
            new ExtractCommand(context, environment),
            new PushCommand(context, environment),
            new PlanCommand(context, environment),
        };
        foreach (var option in root.Options.OfType<VersionOption>())
            option.Action = new PrintVersionAction(context);
        return root;
    }

    /// <summary>The tool's version (the assembly's informational version).</summary>
    public static string Version =>
        typeof(LayerToolApp).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(LayerToolApp).Assembly.GetName().Version?.ToString()
        ?? "unknown";

    /// <summary>Prints our version (the default action prints the entry assembly's, wrong when hosted in tests).</summary>
    private sealed class PrintVersionAction(CliContext context) : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            context.Out.WriteLine(Version);
            return CommandErrors.Success;
        }
    }

    /// <summary>
    /// Runs the CLI on the process console. SIGINT (Ctrl-C) and SIGTERM cancel the running verb, which cleans up
    /// (build, export and dind containers, temp files) and exits 130 for SIGINT, 143 for SIGTERM (128 + the signal,
    /// as a shell reports a process the signal killed). A second signal during the clean-up, or a clean-up longer
    /// than <see cref="CleanupTimeout"/>, ends the process at once with that code; its temp files are deleted all
    /// the same, and the containers it could not remove are removed by the next run's sweep (their names say that
    /// their process is gone).
    /// Every temp file of the run goes into one directory of its own (<c>TMPDIR/layertool-tmp-ID</c>, made the
    /// process's TMPDIR, so that also code that only knows <see cref="Path.GetTempPath"/> writes there), deleted
    /// when the process ends, or by a later run when this one was killed.
    /// </summary>
    public static int Run(string[] args)
    {
        using var cancel = new CancellationTokenSource();
        var signalled = 0;
        string? runTemp = null;
        void OnSignal(PosixSignalContext signal)
        {
            var code = signal.Signal == PosixSignal.SIGTERM ? CommandErrors.Terminated : CommandErrors.Cancelled;
            if (Interlocked.CompareExchange(ref signalled, code, 0) != 0)
            {
                // The second signal: stop waiting for the clean-up (an engine that hangs could hold it for a minute),
                // but not before the temp files are gone (a squash's can be gigabytes; deleting them takes no engine).
                Console.Error.WriteLine("layertool: cancelled again: stopped before the clean-up finished");
                DeleteRunTemp(Volatile.Read(ref runTemp));
                Environment.Exit(code);
            }
            signal.Cancel = true;
            cancel.Cancel();
        }
        // The handlers first: from here a signal never ends the process without its clean-up.
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        var tempRoot = Path.GetTempPath();
        try
        {
            Volatile.Write(ref runTemp, Sweeper.CreateRunTempDirectory(tempRoot));
            // The process's own setting, made at its entry point: everything below (and any child) puts its temp
            // files into the run's directory.
            Environment.SetEnvironmentVariable("TMPDIR", runTemp);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // No directory of our own: temp files go where they always went (a killed run then leaks them).
        }
        try
        {
            var run = RunAsync(args, CliContext.FromConsole() with { TempRoot = tempRoot, TempDirectory = runTemp }, cancel.Token);
            var signalTask = new TaskCompletionSource();
            using (cancel.Token.Register(() => signalTask.TrySetResult()))
            {
                // After a signal the verb gets CleanupTimeout to finish its clean-up.
                if (Task.WhenAny(run, signalTask.Task).GetAwaiter().GetResult() != run
                    && Task.WhenAny(run, Task.Delay(CleanupTimeout)).GetAwaiter().GetResult() != run)
                {
                    Console.Error.WriteLine("layertool: cancelled: stopped before the clean-up finished");
                    return Volatile.Read(ref signalled);
                }
            }
            var exit = run.GetAwaiter().GetResult();
            return exit == CommandErrors.Cancelled && Volatile.Read(ref signalled) == CommandErrors.Terminated ? CommandErrors.Terminated : exit;
        }
        finally
        {
            DeleteRunTemp(runTemp);
        }
    }

    /// <summary>Deletes the run's temp directory; a file made while it is deleted (a verb still winding down) gets a second try.</summary>
    private static void DeleteRunTemp(string? runTemp)
    {
        if (runTemp is null) return;
        for (var attempt = 0; attempt < 3 && !Sweeper.TryDeleteDirectory(runTemp); attempt++) Thread.Sleep(20);
    }

    /// <summary>
    /// How long a verb may take to clean up after SIGINT or SIGTERM: a backstop, longer than the verbs' own
    /// clean-up budgets (60 s for a build's containers), which report what they could not remove.
    /// </summary>
    public static TimeSpan CleanupTimeout { get; } = TimeSpan.FromSeconds(90);

    /// <summary>
    /// Runs the CLI in-process: 0 success, 1 failure (a user error printed as <c>layertool: message</c>),
    /// 2 usage error, 130 cancelled (<see cref="Run"/> reports 143 when SIGTERM was the cause).
    /// </summary>
    public static async Task<int> RunAsync(string[] args, CliContext context, CancellationToken cancellationToken, Func<string, string?>? environment = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(context);
        var root = CreateRootCommand(context, environment);
        var result = root.Parse(args);
        if (result.Errors.Count > 0)
        {
            foreach (var error in result.Errors)
                await context.Error.WriteLineAsync($"layertool: {error.Message}").ConfigureAwait(false);
            await context.Error.WriteLineAsync("Run 'layertool --help' for usage.").ConfigureAwait(false);
            return CommandErrors.Usage;
        }

        var configuration = new InvocationConfiguration
        {
            Output = context.Out,
            Error = context.Error,
            EnableDefaultExceptionHandler = false,
            // Signals are handled by Run (the console entry point), not here: hosted in-process (tests), the
            // caller's token is the only way to cancel.
            ProcessTerminationTimeout = null,
        };
        return await result.InvokeAsync(configuration, cancellationToken).ConfigureAwait(false);
    }
}
