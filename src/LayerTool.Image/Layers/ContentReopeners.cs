namespace LayerTool.Image.Layers;

/// <summary>Ready-made <see cref="ContentReopener"/>s.</summary>
public static class ContentReopeners
{
    /// <summary>
    /// Re-reads a file from a flattened tar that can be opened again (a temp copy of an export, a
    /// flattened archive): scans it for the path and hands back its content from a temp file.
    /// </summary>
    public static ContentReopener FromTar(Func<CancellationToken, Task<Stream>> openTar, string? tempDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(openTar);
        return async (path, ct) =>
        {
            var wanted = path;
            for (var hops = 0; hops < 2; hops++)
            {
                var reader = new LayerTarReader(await openTar(ct).ConfigureAwait(false));
                await using (reader.ConfigureAwait(false))
                {
                    while (await reader.ReadNextAsync(ct).ConfigureAwait(false) is { } entry)
                    {
                        if (entry.Path != wanted) continue;
                        if (entry.Type == LayerEntryType.HardLink)
                        {
                            wanted = entry.HardLinkTarget;
                            break;
                        }
                        var copy = new FileStream(LayerDiff.TempFile(tempDirectory), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 81920,
                            FileOptions.DeleteOnClose | FileOptions.Asynchronous);
                        await reader.Content.CopyToAsync(copy, ct).ConfigureAwait(false);
                        copy.Position = 0;
                        return copy;
                    }
                }
            }
            throw new ImageFormatException($"'{path}' is not in the filesystem any more");
        };
    }
}
