using LayerTool.Image.Layers.Diff;

namespace LayerTool.Image.Layers.Index;

/// <summary>
/// Stores an <see cref="FsIndex"/> on disk (the <see cref="FsIndexStore"/> format: records in walk order,
/// a sparse key index and a SHA-256 trailer, so a damaged cache file is detected rather than trusted) and
/// opens it again as an on-disk index: read as a stream, never loaded whole.
/// </summary>
public static class FsIndexSerializer
{
    /// <summary>Writes <paramref name="index"/> to a new file at <paramref name="path"/>.</summary>
    public static void WriteFile(FsIndex index, string path)
    {
        ArgumentNullException.ThrowIfNull(index);
        using var writer = new FsIndexStoreWriter(path, null);
        foreach (var (node, first) in index.Nodes())
        {
            var entry = first is null ? node.Entry : node.Entry.AsHardLinkTo(first);
            writer.Add(entry, node.Hash);
        }
        writer.Build();
    }

    /// <summary>Opens an index written by <see cref="WriteFile"/>, after checking its checksum.</summary>
    /// <exception cref="ImageFormatException">The file is not an index, or is damaged.</exception>
    public static FsIndex OpenFile(string path) => new(FsIndexStore.Open(path, verify: true));

    /// <summary>Writes <paramref name="index"/> to <paramref name="output"/> (the file format, through a temp file).</summary>
    public static void Write(FsIndex index, Stream output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var temp = LayerDiff.TempFile(null);
        try
        {
            WriteFile(index, temp);
            using var input = File.OpenRead(temp);
            input.CopyTo(output);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>Reads an index written by <see cref="Write"/> (through an unlinked temp file).</summary>
    /// <exception cref="ImageFormatException">The data is not an index, or is damaged.</exception>
    public static FsIndex Read(Stream input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var handle = FsIndexStore.CreateUnlinked(null);
        try
        {
            var buffer = new byte[1 << 16];
            long at = 0;
            int n;
            while ((n = input.Read(buffer)) > 0)
            {
                RandomAccess.Write(handle, buffer.AsSpan(0, n), at);
                at += n;
            }
            return new FsIndex(FsIndexStore.Open(handle, verify: true));
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }
}
