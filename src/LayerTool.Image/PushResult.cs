namespace LayerTool.Image;

/// <summary>What a push did.</summary>
/// <param name="Digest">The manifest's digest in the registry.</param>
/// <param name="MediaType">The manifest's media type.</param>
/// <param name="Uploaded">Blobs uploaded.</param>
/// <param name="Existing">Blobs the registry had.</param>
/// <param name="Mounted">Blobs mounted from another repository.</param>
/// <param name="UploadedBytes">Bytes uploaded.</param>
public sealed record PushResult(Digest Digest, string MediaType, int Uploaded, int Existing, int Mounted, long UploadedBytes);
