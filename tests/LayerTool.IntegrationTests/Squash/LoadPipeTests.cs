using System.Diagnostics;
using LayerTool.Docker.Squash;
using LayerTool.Docker.Sweep;

namespace LayerTool.IntegrationTests.Squash;

/// <summary>
/// How a piped load finds its pipe in the engine's temp directory, on a directory of the test's own (no
/// engine): only a FIFO under the squash's own name counts; it waits for it while the engine unpacks
/// something there, and gives up soon when nothing is unpacked there at all (the engine uses another
/// temp directory).
/// </summary>
public sealed class LoadPipeTests : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("layertool-loadpipe-test-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    private static readonly Task Loading = new TaskCompletionSource().Task; // a load still running

    private static void MakeFifo(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var mkfifo = Process.Start("mkfifo", [path]);
        mkfifo.WaitForExit();
        mkfifo.ExitCode.ShouldBe(0);
    }

    private Task<string?> FindAsync(IReadOnlySet<string> before, Task loading, TimeSpan wait) =>
        LoadPipe.FindAsync(_temp, "layertool-mine", before, DateTime.UtcNow, loading, wait, CancellationToken.None);

    [Fact]
    public async Task Finds_the_fifo_under_its_own_name_and_nothing_else()
    {
        Directory.CreateDirectory(Path.Combine(_temp, "docker-import-1", "layertool-other"));
        MakeFifo(Path.Combine(_temp, "docker-import-1", "layertool-other", "layer.tar"));
        var before = LoadPipe.Imports(_temp);
        before.ShouldBe(["docker-import-1"]);
        Directory.CreateDirectory(Path.Combine(_temp, "docker-import-2", "layertool-mine"));
        File.WriteAllText(Path.Combine(_temp, "docker-import-2", "layertool-mine", "layer.tar"), "not a pipe");
        MakeFifo(Path.Combine(_temp, "docker-import-3", "layertool-mine", "layer.tar"));

        (await FindAsync(before, Loading, TimeSpan.FromSeconds(5))).ShouldBe(Path.Combine(_temp, "docker-import-3", "layertool-mine", "layer.tar"));
    }

    [Fact]
    public async Task Waits_for_the_pipe_while_an_upload_is_unpacked_there_and_not_when_none_is()
    {
        var before = LoadPipe.Imports(_temp);
        var pipe = Path.Combine(_temp, "docker-import-9", "layertool-mine", "layer.tar");

        // Nothing unpacked here: gives up after about a second, before the pipe shows up at two.
        var late = Task.Delay(TimeSpan.FromSeconds(2)).ContinueWith(_ => MakeFifo(pipe), TaskScheduler.Default);
        (await FindAsync(before, Loading, TimeSpan.FromSeconds(10))).ShouldBeNull();
        await late;
        Directory.Delete(Path.Combine(_temp, "docker-import-9"), recursive: true);

        // An upload being unpacked here (its import directory, not yet our pipe): waits, and finds the pipe.
        Directory.CreateDirectory(Path.Combine(_temp, "docker-import-9"));
        late = Task.Delay(TimeSpan.FromSeconds(2)).ContinueWith(_ => MakeFifo(pipe), TaskScheduler.Default);
        (await FindAsync(before, Loading, TimeSpan.FromSeconds(10))).ShouldBe(pipe);
        await late;
    }

    [Fact]
    public async Task Releases_a_pipe_an_engine_waits_on_when_its_process_is_gone_and_only_then()
    {
        var self = ProcessOwner.Current.ShouldNotBeNull();
        // No such process (PIDs stop far below), on this host: gone.
        var orphan = Path.Combine(_temp, "docker-import-1", $"layertool-999999999.1.{self.Host}.0a1b", "layer.tar");
        var live = Path.Combine(_temp, "docker-import-2", $"layertool-{self.Token}.0a1b", "layer.tar");
        // A process of another host key (another machine, PID namespace or boot): never judged.
        var foreign = Path.Combine(_temp, "docker-import-3", "layertool-999999999.1.0123abcd.0a1b", "layer.tar");
        MakeFifo(orphan);
        MakeFifo(live);
        MakeFifo(foreign);
        LoadPipe.NewDirectoryName().ShouldStartWith($"layertool-{self.Token}.");
        Sweeper.ReleasePipes(_temp).ShouldBe(0, "nobody reads either pipe yet");

        // Readers waiting as the engine does (a blocking open until a writer comes), then reading to the end.
        static Task<int> ReaderAsync(string path) => Task.Factory.StartNew(() =>
        {
            using var pipe = new FileStream(path, FileMode.Open, FileAccess.Read);
            return pipe.Read(new byte[16]);
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        var orphanReader = ReaderAsync(orphan);
        var liveReader = ReaderAsync(live);
        var foreignReader = ReaderAsync(foreign);
        var released = 0;
        for (var i = 0; i < 500 && released == 0; i++)
        {
            await Task.Delay(10);
            released = Sweeper.ReleasePipes(_temp);
        }
        released.ShouldBe(1);
        (await orphanReader.WaitAsync(TimeSpan.FromSeconds(10))).ShouldBe(0, "the reader got an empty layer");
        liveReader.IsCompleted.ShouldBeFalse("the live process's pipe is left to it");
        foreignReader.IsCompleted.ShouldBeFalse("a pipe whose owner cannot be judged is left alone");

        // Release the other readers as their processes would.
        using (var writer = new FileStream(live, FileMode.Open, FileAccess.Write)) { }
        using (var writer = new FileStream(foreign, FileMode.Open, FileAccess.Write)) { }
        (await liveReader.WaitAsync(TimeSpan.FromSeconds(10))).ShouldBe(0);
        (await foreignReader.WaitAsync(TimeSpan.FromSeconds(10))).ShouldBe(0);
    }

    [Fact]
    public async Task Stops_looking_when_the_load_has_ended()
    {
        Directory.CreateDirectory(Path.Combine(_temp, "docker-import-5"));
        (await FindAsync(new HashSet<string>(), Task.CompletedTask, TimeSpan.FromSeconds(10))).ShouldBeNull();
    }
}
