namespace LayerTool.Image.Layers;

/// <summary>The kinds of entry a layer tar can hold (sockets cannot be represented in tar).</summary>
public enum LayerEntryType
{
    RegularFile,
    Directory,
    Symlink,
    HardLink,
    CharacterDevice,
    BlockDevice,
    Fifo,
}
