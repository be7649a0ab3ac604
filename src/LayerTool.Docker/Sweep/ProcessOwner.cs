using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace LayerTool.Docker.Sweep;

/// <summary>Whether the process that owns a leftover still runs.</summary>
public enum OwnerState
{
    /// <summary>The owner runs: its things are left alone.</summary>
    Alive,

    /// <summary>The owner has exited (or was killed): its things can go.</summary>
    Gone,

    /// <summary>Cannot tell (another machine, another PID namespace, an unreadable /proc, a name of another
    /// format): left alone.</summary>
    Unknown,
}

/// <summary>
/// The process that owns a container, a temp directory or a load pipe, as written into its name: the PID, the
/// process's start time (clock ticks since boot, <c>/proc/PID/stat</c> field 22) and a host key (a hash of the
/// kernel's boot ID and the PID namespace). A PID alone is not an owner: PIDs are reused, so a new process with
/// the same PID would keep a dead one's things for ever, or worse, a killed LayerTool's things would be taken for
/// those of whatever process got its PID. The start time tells the two apart; the host key keeps a process from
/// judging PIDs of another machine (a shared remote engine), another boot, or another PID namespace (a container),
/// whose owners it cannot see: those are <see cref="OwnerState.Unknown"/> and never swept.
/// </summary>
/// <param name="Pid">The process ID.</param>
/// <param name="StartTicks">When the process started, in clock ticks since boot.</param>
/// <param name="Host">The host key: 8 hex digits.</param>
public sealed record ProcessOwner(int Pid, ulong StartTicks, string Host)
{
    private const string UnknownHost = "00000000";

    /// <summary>This process, or null where <c>/proc</c> cannot say (not Linux): then nothing is ever swept.</summary>
    public static ProcessOwner? Current { get; } = ReadCurrent();

    /// <summary><c>PID.START.HOST</c>: the owner as it appears in names (characters a container name allows).</summary>
    public string Token => string.Create(CultureInfo.InvariantCulture, $"{Pid}.{StartTicks}.{Host}");

    /// <summary>
    /// A new ID owned by this process: <c>PID.START.HOST.RANDOM</c>, to put in the name of a container or temp
    /// directory so that a later run can tell whether its owner still runs (<see cref="TryParseId"/>). Where the
    /// owner cannot be read, the host key is all zeros, which no process ever judges.
    /// </summary>
    public static string NewId()
    {
        var owner = Current ?? new ProcessOwner(Environment.ProcessId, 0, UnknownHost);
        return owner.Token + "." + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
    }

    /// <summary>The owner of an ID made by <see cref="NewId"/> (what follows is ignored: <c>-N</c> suffixes and such).</summary>
    public static bool TryParseId(string id, out ProcessOwner owner)
    {
        ArgumentNullException.ThrowIfNull(id);
        owner = null!;
        var end = id.IndexOf('-', StringComparison.Ordinal);
        var parts = (end < 0 ? id : id[..end]).Split('.');
        if (parts.Length != 4
            || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid <= 0
            || !ulong.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var start)
            || parts[2].Length != 8 || !parts[2].All(char.IsAsciiHexDigitLower)
            || parts[3].Length == 0 || !parts[3].All(char.IsAsciiHexDigitLower))
            return false;
        owner = new ProcessOwner(pid, start, parts[2]);
        return true;
    }

    /// <summary>
    /// Whether this owner still runs, judged from this process: <see cref="OwnerState.Unknown"/> unless it is on
    /// the same host key (same boot, same PID namespace); then alive when a process with its PID and start time
    /// exists and is not a zombie.
    /// </summary>
    public OwnerState State()
    {
        if (Current is not { } self || Host == UnknownHost || !string.Equals(Host, self.Host, StringComparison.Ordinal)) return OwnerState.Unknown;
        if (Pid == self.Pid && StartTicks == self.StartTicks) return OwnerState.Alive;
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{Pid.ToString(CultureInfo.InvariantCulture)}/stat");
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return OwnerState.Gone;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A process that ended while its stat was read reads as ESRCH; anything else: cannot tell.
            return Directory.Exists($"/proc/{Pid.ToString(CultureInfo.InvariantCulture)}") ? OwnerState.Unknown : OwnerState.Gone;
        }
        if (ParseStat(stat) is not { } found) return OwnerState.Unknown;
        return found.StartTicks != StartTicks || found.State is 'Z' or 'X' ? OwnerState.Gone : OwnerState.Alive;
    }

    /// <summary>The state (field 3) and start time (field 22) of a <c>/proc/PID/stat</c> line. The command name
    /// (field 2) is in parentheses and may hold spaces and parentheses: the fields are counted after the last ')'.</summary>
    internal static (char State, ulong StartTicks)? ParseStat(string stat)
    {
        var close = stat.LastIndexOf(')');
        if (close < 0) return null;
        var fields = stat[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        // fields[0] is field 3 (the state), so field 22 is fields[19].
        if (fields.Length < 20 || fields[0].Length != 1
            || !ulong.TryParse(fields[19], NumberStyles.None, CultureInfo.InvariantCulture, out var start))
            return null;
        return (fields[0][0], start);
    }

    private static ProcessOwner? ReadCurrent()
    {
        try
        {
            if (!OperatingSystem.IsLinux()) return null;
            var pid = Environment.ProcessId;
            if (ParseStat(File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat")) is not { } stat) return null;
            var boot = File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim();
            var pidNamespace = new FileInfo("/proc/self/ns/pid").LinkTarget;
            if (boot.Length == 0 || string.IsNullOrEmpty(pidNamespace)) return null;
            var host = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(boot + "\n" + pidNamespace)))[..8];
            // The all-zero key means "unknown"; a real one that hashes to it is taken as another.
            return new ProcessOwner(pid, stat.StartTicks, host == UnknownHost ? "00000001" : host);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
