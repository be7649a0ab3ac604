using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using LayerTool.Build.Context;

namespace LayerTool.Build.Plans;

/// <summary>
/// The hash of everything a plan image's build reads, for up-to-date checks: an image whose hash is unchanged
/// and whose output exists need not be built again. Pure (reads files, no engine), streaming (file contents are
/// hashed as they are read, never held), and the same on every machine and run: it depends on no time, no
/// absolute path, no user or group, no file-system order.
/// <para>The SHA-256 of this byte sequence, each string written as its UTF-8 length in decimal, <c>:</c>, its
/// bytes (so no two inputs run together):</para>
/// <list type="number">
/// <item><c>layertool-plan-input/1</c>;</item>
/// <item><c>dockerfile</c>, the SHA-256 of the Dockerfile's bytes;</item>
/// <item><c>target</c>, the target stage or the empty string;</item>
/// <item>for each build arg in ordinal order of names: <c>arg</c>, name, value;</item>
/// <item>for each parent in ordinal order of names: <c>parent</c>, name, the parent's image digest as given;</item>
/// <item>for each entry of the context after <c>.dockerignore</c> (the context's own rules, as <c>layertool
/// build</c> applies them), in ordinal path order, depth first: <c>entry</c>, the path relative to the context
/// (<c>/</c>-separated, <c>""</c> for the root), the kind (<c>file</c>, <c>dir</c>, <c>symlink</c>), the permission
/// bits in octal, the size, the link target (<c>""</c> for others), and for a file the SHA-256 of its content.</item>
/// </list>
/// Modification times are left out on purpose: a checkout or a <c>touch</c> does not make an image stale, as it
/// does not bust BuildKit's cache either.
/// </summary>
public static class PlanInputHash
{
    /// <summary>The first string hashed; a change in the rules above changes it.</summary>
    public const string Version = "layertool-plan-input/1";

    /// <summary>
    /// The input hash of <paramref name="image"/>, <c>sha256:</c> and 64 hex digits.
    /// </summary>
    /// <param name="image">The image (its context, Dockerfile, args, target).</param>
    /// <param name="parentDigests">The digest (or image ID) of each parent the image was or will be built on, by
    /// parent name; what it holds is the caller's choice, but the same parent must give the same string.</param>
    /// <param name="cancellationToken">Checked between entries and between reads.</param>
    /// <exception cref="BuildException">The context is not a directory, or a path in it cannot be read.</exception>
    public static async Task<string> ComputeAsync(PlanImage image, IReadOnlyDictionary<string, string> parentDigests, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(parentDigests);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(81920);
        try
        {
            Write(hash, Version);
            Write(hash, "dockerfile");
            Write(hash, await FileHashAsync(image.Dockerfile, buffer, cancellationToken).ConfigureAwait(false));
            Write(hash, "target");
            Write(hash, image.Target ?? string.Empty);
            foreach (var (name, value) in image.BuildArgs.OrderBy(a => a.Key, StringComparer.Ordinal))
            {
                Write(hash, "arg");
                Write(hash, name);
                Write(hash, value);
            }

            foreach (var (name, digest) in parentDigests.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                Write(hash, "parent");
                Write(hash, name);
                Write(hash, digest);
            }

            var context = BuildContext.Open(image.Context, null);
            foreach (var entry in context.Entries(new ContextSource(string.Empty, context.Root, IsDirectory: true)))
            {
                cancellationToken.ThrowIfCancellationRequested();
                Write(hash, "entry");
                Write(hash, entry.RelativePath);
                Write(hash, entry.Kind switch { EntryKind.File => "file", EntryKind.Directory => "dir", _ => "symlink" });
                Write(hash, Convert.ToString((int)entry.Mode & 0xFFF, 8));
                Write(hash, entry.Size.ToString(CultureInfo.InvariantCulture));
                Write(hash, entry.LinkTarget ?? string.Empty);
                if (entry.Kind == EntryKind.File)
                    Write(hash, await FileHashAsync(entry.FullPath, buffer, cancellationToken).ConfigureAwait(false));
            }

            return "sha256:" + Convert.ToHexStringLower(hash.GetHashAndReset());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BuildException($"image {image.Name}: cannot read its inputs: {e.Message}", e);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static void Write(IncrementalHash hash, string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        hash.AppendData(Encoding.ASCII.GetBytes(bytes.Length.ToString(CultureInfo.InvariantCulture) + ":"));
        hash.AppendData(bytes);
    }

    private static async Task<string> FileHashAsync(string path, byte[] buffer, CancellationToken cancellationToken)
    {
        using var file = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.Asynchronous | FileOptions.SequentialScan);
        await using (stream.ConfigureAwait(false))
        {
            int read;
            while ((read = await stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                file.AppendData(buffer, 0, read);
        }

        return Convert.ToHexStringLower(file.GetHashAndReset());
    }
}
