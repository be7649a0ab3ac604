using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace LayerTool.Registry.Extract;

/// <summary>
/// The libc calls extraction needs, on raw byte paths: layer names must reach the filesystem byte for byte
/// (the .NET file APIs take UTF-16 strings and cannot name a non-UTF-8 file), and owners, device nodes and
/// a symlink's own times have no .NET API. Linux only.
/// </summary>
internal static partial class NativeFiles
{
    public const int Enoent = 2;
    public const int Eexist = 17;
    public const int Einval = 22;
    public const int Enotdir = 20;
    private const int OWrOnly = 1;
    private const int ORdOnly = 0;
    private const int OCreat = 0x40;
    private const int OExcl = 0x80;
    private const int ODirectory = 0x10000;
    private const int ONoFollow = 0x20000;
    private const int OCloExec = 0x80000;
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true)]
    private static partial int Open(byte[] path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "mkdir", SetLastError = true)]
    private static partial int Mkdir(byte[] path, int mode);

    [LibraryImport("libc", EntryPoint = "symlink", SetLastError = true)]
    private static partial int Symlink(byte[] target, byte[] path);

    [LibraryImport("libc", EntryPoint = "link", SetLastError = true)]
    private static partial int Link(byte[] existing, byte[] path);

    [LibraryImport("libc", EntryPoint = "mknod", SetLastError = true)]
    private static partial int Mknod(byte[] path, uint mode, ulong device);

    [LibraryImport("libc", EntryPoint = "lchown", SetLastError = true)]
    private static partial int Lchown(byte[] path, int uid, int gid);

    [LibraryImport("libc", EntryPoint = "chmod", SetLastError = true)]
    private static partial int Chmod(byte[] path, int mode);

    [LibraryImport("libc", EntryPoint = "readlink", SetLastError = true)]
    private static partial nint Readlink(byte[] path, byte[] buffer, nint size);

    [LibraryImport("libc", EntryPoint = "unlink", SetLastError = true)]
    private static partial int Unlink(byte[] path);

    [LibraryImport("libc", EntryPoint = "rmdir", SetLastError = true)]
    private static partial int Rmdir(byte[] path);

    [LibraryImport("libc", EntryPoint = "utimensat", SetLastError = true)]
    private static partial int Utimensat(int dirfd, byte[] path, long[] times, int flags);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint Geteuid();

    /// <summary>Whether the process runs as root (owners are kept only then).</summary>
    public static bool IsRoot => Geteuid() == 0;

    /// <summary>NUL-terminates a byte path for libc.</summary>
    public static byte[] Z(ReadOnlySpan<byte> path)
    {
        var z = new byte[path.Length + 1];
        path.CopyTo(z);
        return z;
    }

    /// <summary>What is at a path, without following a symlink there.</summary>
    public enum Kind
    {
        Missing,
        Directory,
        Symlink,
        Other,
    }

    /// <summary>The kind of <paramref name="path"/> (not following a last symlink), and a symlink's target.</summary>
    public static Kind Probe(byte[] path, out byte[]? linkTarget)
    {
        linkTarget = null;
        var buffer = new byte[4096];
        var n = Readlink(path, buffer, buffer.Length);
        if (n >= 0)
        {
            linkTarget = buffer.AsSpan(0, (int)n).ToArray();
            return Kind.Symlink;
        }

        var errno = Marshal.GetLastPInvokeError();
        if (errno == Enoent)
        {
            return Kind.Missing;
        }

        if (errno == Enotdir)
        {
            throw Error("look up", path, errno);
        }

        var fd = Open(path, ORdOnly | ODirectory | ONoFollow | OCloExec, 0);
        if (fd >= 0)
        {
            Close(fd);
            return Kind.Directory;
        }

        return Kind.Other;
    }

    public static void MakeDirectory(byte[] path, int mode)
    {
        if (Mkdir(path, mode) != 0 && Marshal.GetLastPInvokeError() is var errno && errno != Eexist)
        {
            throw Error("create directory", path, errno);
        }
    }

    /// <summary>Creates a new regular file (never through a symlink) and returns it for writing.</summary>
    public static FileStream CreateFile(byte[] path, int mode)
    {
        var fd = Open(path, OWrOnly | OCreat | OExcl | ONoFollow | OCloExec, mode & 0x1ff);
        if (fd < 0)
        {
            throw Error("create", path, Marshal.GetLastPInvokeError());
        }

        return new FileStream(new SafeFileHandle(fd, ownsHandle: true), FileAccess.Write, 1 << 16);
    }

    public static void CreateSymlink(byte[] target, byte[] path)
    {
        if (Symlink(target, path) != 0)
        {
            throw Error("create symlink", path, Marshal.GetLastPInvokeError());
        }
    }

    public static void CreateHardLink(byte[] existing, byte[] path)
    {
        if (Link(existing, path) != 0)
        {
            throw Error("create hard link", path, Marshal.GetLastPInvokeError());
        }
    }

    /// <summary>Creates a FIFO or a device node (<paramref name="type"/> is the S_IF* bits).</summary>
    public static bool TryCreateNode(byte[] path, uint type, int mode, long major, long minor, out int errno)
    {
        var device = ((ulong)(major & 0xfff) << 8) | ((ulong)(minor & 0xff)) | ((ulong)(minor & ~0xffL) << 12) | ((ulong)(major & ~0xfffL) << 32);
        errno = Mknod(path, type | (uint)(mode & 0x1ff), device) == 0 ? 0 : Marshal.GetLastPInvokeError();
        return errno == 0;
    }

    public static void SetOwner(byte[] path, long uid, long gid)
    {
        if (Lchown(path, (int)uid, (int)gid) != 0)
        {
            throw Error("set the owner of", path, Marshal.GetLastPInvokeError());
        }
    }

    public static void SetMode(byte[] path, int mode)
    {
        if (Chmod(path, mode & 0xfff) != 0)
        {
            throw Error("set the mode of", path, Marshal.GetLastPInvokeError());
        }
    }

    /// <summary>Sets access and modification time (of a symlink itself, not its target).</summary>
    public static void SetTime(byte[] path, DateTimeOffset time)
    {
        var ticks = time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
        var seconds = Math.DivRem(ticks, TimeSpan.TicksPerSecond, out var rest);
        if (rest < 0)
        {
            seconds--;
            rest += TimeSpan.TicksPerSecond;
        }

        long[] times = [seconds, rest * 100, seconds, rest * 100];
        _ = Utimensat(AtFdCwd, path, times, AtSymlinkNoFollow);
    }

    /// <summary>Removes a file, symlink or empty directory; false when it was a non-empty directory.</summary>
    public static bool TryRemove(byte[] path)
    {
        if (Unlink(path) == 0)
        {
            return true;
        }

        var errno = Marshal.GetLastPInvokeError();
        if (errno == Enoent)
        {
            return true;
        }

        // EISDIR (21) on Linux, EPERM on some systems: a directory.
        if (Rmdir(path) == 0)
        {
            return true;
        }

        errno = Marshal.GetLastPInvokeError();
        return errno == Enoent ? true : errno is 39 or 17 ? false : throw Error("remove", path, errno);
    }

    public static IOException Error(string doing, byte[] path, int errno) =>
        new($"cannot {doing} {LayerTool.Image.Layers.LayerPath.Display(path.AsSpan(0, Math.Max(0, path.Length - 1)))}: {Marshal.GetPInvokeErrorMessage(errno)}");
}
