using System.Diagnostics;
using System.Globalization;
using LayerTool.Docker.Sweep;

namespace LayerTool.IntegrationTests.Reliability;

/// <summary>
/// Who owns a leftover, and what the sweep does with it, on real processes and a temp directory of the test's
/// own (no engine): only what belongs to a process that is gone is removed; a live owner, a reused PID's new
/// process and an owner of another host key (another machine, boot or PID namespace) keep theirs.
/// </summary>
public sealed class SweepOwnerTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("lt-sweep-test-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static ProcessOwner Self => ProcessOwner.Current.ShouldNotBeNull("this test runs on Linux, where /proc says who we are");

    /// <summary>A real child process (sleep), its owner as read from /proc while it runs.</summary>
    private static (Process Process, ProcessOwner Owner) StartChild()
    {
        var process = Process.Start(new ProcessStartInfo("sleep", "60") { UseShellExecute = false }) ?? throw new InvalidOperationException("cannot start sleep");
        var stat = ProcessOwner.ParseStat(File.ReadAllText($"/proc/{process.Id.ToString(CultureInfo.InvariantCulture)}/stat")).ShouldNotBeNull();
        return (process, new ProcessOwner(process.Id, stat.StartTicks, Self.Host));
    }

    [Fact]
    public void This_process_is_its_own_alive_owner_and_its_ids_name_it()
    {
        Self.Pid.ShouldBe(Environment.ProcessId);
        Self.Host.Length.ShouldBe(8);
        Self.State().ShouldBe(OwnerState.Alive);
        var id = ProcessOwner.NewId();
        id.ShouldStartWith(Self.Token + ".");
        ProcessOwner.NewId().ShouldNotBe(id);
        ProcessOwner.TryParseId(id, out var parsed).ShouldBeTrue();
        parsed.ShouldBe(Self);
        // A build container's name adds "-N": the owner is the same.
        ProcessOwner.TryParseId(id + "-12", out var withCounter).ShouldBeTrue();
        withCounter.ShouldBe(Self);
    }

    [Fact]
    public async Task A_process_that_exited_is_gone_and_a_reused_pid_is_not_its_owner()
    {
        var (child, owner) = StartChild();
        using (child)
        {
            owner.State().ShouldBe(OwnerState.Alive);
            (owner with { StartTicks = owner.StartTicks + 1 }).State().ShouldBe(OwnerState.Gone, "same PID, another start: the PID was reused");
            child.Kill();
            await child.WaitForExitAsync();
            owner.State().ShouldBe(OwnerState.Gone);
        }
    }

    [Fact]
    public void An_owner_of_another_host_key_or_an_unknown_one_is_never_judged()
    {
        new ProcessOwner(999_999_999, 1, Self.Host).State().ShouldBe(OwnerState.Gone, "no such PID here");
        new ProcessOwner(999_999_999, 1, Self.Host == "0123abcd" ? "0123abce" : "0123abcd").State().ShouldBe(OwnerState.Unknown);
        new ProcessOwner(999_999_999, 1, "00000000").State().ShouldBe(OwnerState.Unknown);
        (Self with { Host = "00000000" }).State().ShouldBe(OwnerState.Unknown);
    }

    [Theory]
    [InlineData("0a1b2c3d4e5f-1")] // a build ID of the old format (random, no owner)
    [InlineData("12345-0a1b")] // a pipe directory of the old format
    [InlineData("12345.678.0123abcd")] // no random part
    [InlineData("12345.678.0123ABCD.0a1b")] // upper case
    [InlineData("12345.678.0123abc.0a1b")] // a short host key
    [InlineData("0.678.0123abcd.0a1b")] // PID 0
    [InlineData("-1.678.0123abcd.0a1b")]
    [InlineData("12345.x.0123abcd.0a1b")]
    [InlineData("")]
    public void Ids_of_other_formats_have_no_owner(string id) => ProcessOwner.TryParseId(id, out _).ShouldBeFalse();

    [Fact]
    public void The_start_time_is_read_after_a_command_name_with_spaces_and_parentheses()
    {
        var fields = string.Join(' ', Enumerable.Range(3, 50).Select(i => i == 22 ? "987654" : i.ToString(CultureInfo.InvariantCulture)));
        ProcessOwner.ParseStat($"4242 (a b) (c)) S {fields[2..]}").ShouldBe(('S', 987654UL));
        ProcessOwner.ParseStat("4242 (x) Z 1 2").ShouldBeNull("too few fields");
        ProcessOwner.ParseStat("garbage").ShouldBeNull();
    }

    [Fact]
    public void Container_names_tell_their_owner_only_for_export_build_and_dind_containers()
    {
        var id = ProcessOwner.NewId();
        Sweeper.OwnerOfContainer($"/layertool-export-{id}").ShouldBe(Self);
        Sweeper.OwnerOfContainer($"layertool-build-{id}-3").ShouldBe(Self);
        Sweeper.OwnerOfContainer("/layertool-build-0a1b2c3d4e5f-3").ShouldBeNull("a build of the old format: no owner");
        Sweeper.OwnerOfContainer($"/layertool-dind-{id}").ShouldBe(Self);
        Sweeper.OwnerOfContainer("/layertool-dind-0a1b2c3d4e5f").ShouldBeNull("a dind container of the old format: no owner");
        Sweeper.OwnerOfContainer($"/my-layertool-export-{id}").ShouldBeNull();
    }

    [Fact]
    public async Task The_temp_sweep_removes_only_directories_of_owners_that_are_gone()
    {
        var (child, owner) = StartChild();
        using (child)
        {
            string Make(string name)
            {
                var path = Path.Combine(_root, name);
                Directory.CreateDirectory(Path.Combine(path, "deeper"));
                File.WriteAllText(Path.Combine(path, "deeper", "layertool-squash-x.tar"), "layer");
                return path;
            }
            var dead = Make($"{Sweeper.TempPrefix}{owner.Token}.0a1b");
            var mine = Sweeper.CreateRunTempDirectory(_root);
            var foreign = Make($"{Sweeper.TempPrefix}{owner.Pid}.{owner.StartTicks}.{(Self.Host == "0123abcd" ? "0123abce" : "0123abcd")}.0a1b");
            var other = new[] { Make($"{Sweeper.TempPrefix}garbage"), Make("layertool-readme-x"), Make("layertool-0a1b2c3d"), Make($"layertool-{owner.Token}.0a1b") };
            File.WriteAllText(Path.Combine(_root, $"{Sweeper.TempPrefix}{owner.Token}.0a1c"), "a file, not a directory");

            var warnings = new List<string>();
            Sweeper.SweepTemp(_root, warnings).ShouldBeEmpty("the owner still runs");
            Directory.Exists(dead).ShouldBeTrue();

            child.Kill();
            await child.WaitForExitAsync();
            Sweeper.SweepTemp(_root, warnings).ShouldBe(new[] { dead });
            warnings.ShouldBeEmpty();
            Directory.Exists(dead).ShouldBeFalse();
            Directory.Exists(mine).ShouldBeTrue();
            Directory.Exists(foreign).ShouldBeTrue();
            other.ShouldAllBe(p => Directory.Exists(p));
            File.Exists(Path.Combine(_root, $"{Sweeper.TempPrefix}{owner.Token}.0a1c")).ShouldBeTrue();
            Path.GetFileName(mine).ShouldStartWith(Sweeper.TempPrefix + Self.Token + ".");
            if (!OperatingSystem.IsWindows())
                ((int)File.GetUnixFileMode(mine) & 0x1FF).ShouldBe(0x1C0, "the run's temp directory is its own (0700)");
        }
    }

    [Fact]
    public async Task A_sweep_without_an_engine_never_fails_on_a_missing_root()
    {
        var report = await Sweeper.SweepAsync(null, Path.Combine(_root, "missing"), CancellationToken.None);
        report.Containers.ShouldBeEmpty();
        report.TempDirectories.ShouldBeEmpty();
        report.Warnings.ShouldHaveSingleItem().ShouldContain("cannot look for temp directories");
    }
}
