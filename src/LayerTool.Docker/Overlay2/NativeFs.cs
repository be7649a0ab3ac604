using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace LayerTool.Docker.Overlay2;

/// <summary>What <see cref="NativeFs.Lstat"/> returns (the fields a layer entry needs).</summary>
internal readonly record struct NativeStat(uint Mode, long Uid, long Gid, long Size, long Inode, uint Nlink, long MtimeSeconds, uint RdevMajor, uint RdevMinor)
{
    public uint Format => Mode & 0xF000;

    public bool IsDirectory => Format == 0x4000;

    public bool IsRegular => Format == 0x8000;

    public bool IsSymlink => Format == 0xA000;

    public bool IsCharDevice => Format == 0x2000;

    public bool IsBlockDevice => Format == 0x6000;

    public bool IsFifo => Format == 0x1000;

    public bool IsSocket => Format == 0xC000;
}

/// <summary>
/// Byte-exact access to the engine's layer directories through libc. The .NET file APIs decode names as
/// UTF-8 (a non-UTF-8 name comes back with U+FFFD and cannot be opened again), and they expose neither
/// uid/gid/device numbers nor xattrs; layer names must round-trip byte for byte, so paths stay raw bytes
/// (NUL-terminated) from <c>readdir</c> to <c>statx</c>/<c>open</c>. Linux only: the fast path is
/// never tried elsewhere.
/// </summary>
internal static partial class NativeFs
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxBasicStats = 0x7ff;
    private const int ORdOnly = 0;
    private const int OCloExec = 0x80000;
    private const int ONoFollow = 0x20000;
    private const int Erange = 34;
    private const int OWrOnly = 1;
    private const int ONonBlock = 0x800;
    private const int FGetFl = 3;
    private const int FSetFl = 4;
    private const int FSetPipeSize = 1031;

    /// <summary>errno: a named pipe opened for writing without blocking has no reader yet.</summary>
    public const int Enxio = 6;

    /// <summary>errno: no such file or directory.</summary>
    public const int Enoent = 2;
    private const int Enodata = 61;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int statx(int dirfd, byte[] path, int flags, uint mask, byte[] buffer);

    [LibraryImport("libc", SetLastError = true)]
    private static partial IntPtr opendir(byte[] path);

    [LibraryImport("libc", SetLastError = true)]
    private static partial IntPtr readdir(IntPtr dir);

    [LibraryImport("libc")]
    private static partial int closedir(IntPtr dir);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint readlink(byte[] path, byte[] buffer, nint size);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint llistxattr(byte[] path, byte[]? list, nint size);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint lgetxattr(byte[] path, byte[] name, byte[]? value, nint size);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true)]
    private static partial int open_(byte[] path, int flags);

    // fcntl is variadic in C; its third argument is an int for every command used here (F_GETFL, F_SETFL,
    // F_SETPIPE_SZ), which the x86-64 and arm64 Linux calling conventions pass as a fixed int argument.
    [LibraryImport("libc", SetLastError = true)]
    private static partial int fcntl(SafeFileHandle fd, int cmd, int arg);

    /// <summary>A NUL-terminated copy of a path for libc.</summary>
    public static byte[] Z(ReadOnlySpan<byte> path)
    {
        var z = new byte[path.Length + 1];
        path.CopyTo(z);
        return z;
    }

    /// <summary>lstat (via statx, whose struct layout is the same on every architecture); null when absent.</summary>
    public static NativeStat? Lstat(byte[] zpath)
    {
        var b = new byte[256];
        if (statx(AtFdCwd, zpath, AtSymlinkNoFollow, StatxBasicStats, b) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno is 2 or 20) return null; // ENOENT, ENOTDIR
            throw new IOException($"statx failed (errno {errno}) for {Display(zpath)}");
        }
        var s = b.AsSpan();
        return new NativeStat(
            Mode: BinaryPrimitives.ReadUInt16LittleEndian(s[28..]),
            Uid: BinaryPrimitives.ReadUInt32LittleEndian(s[20..]),
            Gid: BinaryPrimitives.ReadUInt32LittleEndian(s[24..]),
            Size: BinaryPrimitives.ReadInt64LittleEndian(s[40..]),
            Inode: BinaryPrimitives.ReadInt64LittleEndian(s[32..]),
            Nlink: BinaryPrimitives.ReadUInt32LittleEndian(s[16..]),
            MtimeSeconds: BinaryPrimitives.ReadInt64LittleEndian(s[112..]),
            RdevMajor: BinaryPrimitives.ReadUInt32LittleEndian(s[128..]),
            RdevMinor: BinaryPrimitives.ReadUInt32LittleEndian(s[132..]));
    }

    /// <summary>The names in a directory (without . and ..), raw bytes, unsorted.</summary>
    public static List<byte[]> ReadDirectory(byte[] zpath)
    {
        var dir = opendir(zpath);
        if (dir == IntPtr.Zero) throw new IOException($"opendir failed (errno {Marshal.GetLastPInvokeError()}) for {Display(zpath)}");
        var names = new List<byte[]>();
        try
        {
            while (true)
            {
                Marshal.SetLastPInvokeError(0);
                var ent = readdir(dir);
                if (ent == IntPtr.Zero)
                {
                    var errno = Marshal.GetLastPInvokeError();
                    if (errno != 0) throw new IOException($"readdir failed (errno {errno}) for {Display(zpath)}");
                    break;
                }
                // struct dirent (glibc, 64-bit): d_ino 8, d_off 8, d_reclen 2, d_type 1, d_name[256] at 19.
                var length = 0;
                while (length < 256 && Marshal.ReadByte(ent, 19 + length) != 0) length++;
                var name = new byte[length];
                Marshal.Copy(ent + 19, name, 0, length);
                if (name is [(byte)'.'] or [(byte)'.', (byte)'.']) continue;
                names.Add(name);
            }
        }
        finally
        {
            _ = closedir(dir);
        }
        return names;
    }

    public static byte[] ReadLink(byte[] zpath)
    {
        var buffer = new byte[4096];
        var n = readlink(zpath, buffer, buffer.Length);
        if (n < 0) throw new IOException($"readlink failed (errno {Marshal.GetLastPInvokeError()}) for {Display(zpath)}");
        return buffer[..(int)n];
    }

    /// <summary>Every xattr of a path (not following symlinks), name → raw value.</summary>
    public static List<KeyValuePair<string, byte[]>> Xattrs(byte[] zpath)
    {
        var result = new List<KeyValuePair<string, byte[]>>();
        var size = llistxattr(zpath, null, 0);
        if (size < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == 95) return result; // EOPNOTSUPP
            throw new IOException($"llistxattr failed (errno {errno}) for {Display(zpath)}");
        }
        if (size == 0) return result;
        var list = new byte[size];
        size = llistxattr(zpath, list, list.Length);
        if (size < 0) throw new IOException($"llistxattr failed (errno {Marshal.GetLastPInvokeError()}) for {Display(zpath)}");
        var start = 0;
        for (var i = 0; i < size; i++)
        {
            if (list[i] != 0) continue;
            var zname = list[start..(i + 1)];
            var name = System.Text.Encoding.UTF8.GetString(list, start, i - start);
            start = i + 1;
            var value = GetXattr(zpath, zname);
            if (value is not null) result.Add(new(name, value));
        }
        return result;
    }

    private static byte[]? GetXattr(byte[] zpath, byte[] zname)
    {
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var size = lgetxattr(zpath, zname, null, 0);
            if (size < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == Enodata) return null;
                throw new IOException($"lgetxattr failed (errno {errno}) for {Display(zpath)}");
            }
            var value = new byte[size];
            var n = lgetxattr(zpath, zname, value, value.Length);
            if (n >= 0) return value[..(int)n];
            if (Marshal.GetLastPInvokeError() != Erange) throw new IOException($"lgetxattr failed for {Display(zpath)}");
        }
        throw new IOException($"the xattrs of {Display(zpath)} keep changing");
    }

    /// <summary>Opens a regular file for streaming reads (no symlink following).</summary>
    public static FileStream OpenRead(byte[] zpath)
    {
        var fd = open_(zpath, ORdOnly | OCloExec | ONoFollow);
        if (fd < 0) throw new IOException($"open failed (errno {Marshal.GetLastPInvokeError()}) for {Display(zpath)}");
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        return new FileStream(handle, FileAccess.Read, 1 << 16, isAsync: false);
    }

    /// <summary>
    /// Opens a named pipe for writing only if a reader has it open (a plain open would block until one does):
    /// the handle, in blocking mode for the writes; or null with <paramref name="errno"/> (<see cref="Enxio"/>:
    /// no reader yet; <see cref="Enoent"/>: no such pipe).
    /// </summary>
    public static SafeFileHandle? TryOpenPipeWriter(byte[] zpath, out int errno)
    {
        var fd = open_(zpath, OWrOnly | ONonBlock | OCloExec | ONoFollow);
        if (fd < 0)
        {
            errno = Marshal.GetLastPInvokeError();
            return null;
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        var flags = fcntl(handle, FGetFl, 0);
        if (flags < 0 || fcntl(handle, FSetFl, flags & ~ONonBlock) < 0)
        {
            errno = Marshal.GetLastPInvokeError();
            handle.Dispose();
            throw new IOException($"fcntl failed (errno {errno}) for {Display(zpath)}");
        }
        errno = 0;
        return handle;
    }

    /// <summary>Asks for a pipe buffer of <paramref name="bytes"/> (fewer wake-ups of each side); false when refused.</summary>
    public static bool TrySetPipeSize(SafeFileHandle pipe, int bytes) => fcntl(pipe, FSetPipeSize, bytes) >= 0;

    public static string Display(ReadOnlySpan<byte> zpath) =>
        LayerTool.Image.Layers.LayerPath.Display(zpath.Length > 0 && zpath[^1] == 0 ? zpath[..^1] : zpath);
}

/// <summary>What the host's file system says about a path, with the byte-exact calls of <see cref="NativeFs"/>.</summary>
public static class HostFiles
{
    /// <summary>
    /// Whether <paramref name="path"/> is a regular file (not following a final symlink). False for FIFOs, sockets and device
    /// nodes, which .NET lists as files (and a FIFO would block a read). Off Linux, whatever .NET lists as a file.
    /// </summary>
    public static bool IsRegularFile(string path) =>
        !OperatingSystem.IsLinux() || NativeFs.Lstat(NativeFs.Z(System.Text.Encoding.UTF8.GetBytes(path))) is { IsRegular: true };
}
