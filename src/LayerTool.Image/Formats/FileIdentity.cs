using System.Runtime.InteropServices;
using System.Text;

namespace LayerTool.Image.Formats;

/// <summary>Whether two paths name the same file: the same spelling once made absolute, or (on Unix) the same
/// device and inode, which also catches a symlink or a hard link to the file and symlinked parent directories.</summary>
public static class FileIdentity
{
    /// <summary>True when <paramref name="a"/> and <paramref name="b"/> are the same file or directory.</summary>
    public static bool Same(string a, string b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        var fullA = Path.TrimEndingDirectorySeparator(Path.GetFullPath(a));
        var fullB = Path.TrimEndingDirectorySeparator(Path.GetFullPath(b));
        var comparison = OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        if (string.Equals(fullA, fullB, comparison)) return true;
        if (!Path.Exists(fullA) || !Path.Exists(fullB)) return false;
        if (OperatingSystem.IsWindows()) return string.Equals(Final(fullA), Final(fullB), comparison);
        return Inode(fullA) is { } x && Inode(fullB) is { } y ? x == y : string.Equals(Final(fullA), Final(fullB), comparison);
    }

    private static string Final(string path)
    {
        FileSystemInfo info = Directory.Exists(path) ? new DirectoryInfo(path) : new FileInfo(path);
        return info.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? path;
    }

    /// <summary>(st_dev, st_ino): the first two fields of <c>struct stat</c> on every Linux ABI; null where stat is not there.</summary>
    private static (ulong Device, ulong Inode)? Inode(string path)
    {
        var buffer = new byte[512];
        try
        {
            if (stat(Encoding.UTF8.GetBytes(path + "\0"), buffer) != 0) return null;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return null;
        }
        return (BitConverter.ToUInt64(buffer, 0), BitConverter.ToUInt64(buffer, 8));
    }

    [DllImport("libc", SetLastError = true)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int stat(byte[] path, byte[] buffer);
}
