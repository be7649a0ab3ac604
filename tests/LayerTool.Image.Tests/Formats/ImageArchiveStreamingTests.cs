using LayerTool.Image;
using LayerTool.Image.Formats;

namespace LayerTool.Image.Tests.Formats;

/// <summary>The streamed docker-archive (straight into a load request body) is the archive the temp-file writer makes.</summary>
public class ImageArchiveStreamingTests
{
    private static async Task<(ComposedImage Image, ImageWriteOptions Options, string LayerPath)> PartialAsync(TempDir dir)
    {
        var baseImage = TestImage.Create(2, "base");
        var baseSave = ImageArchive.Open(TestArchives.WriteTar(dir.File("base.tar"), TestArchives.DockerArchive(baseImage, ["base:1"])));
        var b = baseSave.GetImage();
        var newLayerPath = dir.File("new-layer.tar");
        File.WriteAllBytes(newLayerPath, TestImage.LayerTar(("new.txt", "squashed")));
        var newLayer = await FileLayer.CreateAsync(newLayerPath, CancellationToken.None);
        var config = SquashConfig.Create(new SquashConfigOptions { Final = b.Config, Base = b.Config, NewLayerDiffId = newLayer.DiffId, BaseName = "base:1" });
        var options = new ImageWriteOptions { Format = ImageArchiveFormat.DockerArchive, OmitLayers = b.Layers.Count };
        baseSave.Dispose();
        return (new ComposedImage(config, [.. b.Layers.Select(l => (ILayer)new DescribedLayer(l.DiffId, l.Descriptor)), newLayer]), options, newLayerPath);
    }

    [Fact]
    public async Task Streams_the_same_bytes_as_the_temp_file_writer_without_seeking()
    {
        using var dir = new TempDir();
        var (image, options, _) = await PartialAsync(dir);
        using var staged = new MemoryStream();
        await ImageArchiveWriter.WriteAsync(staged, image, options, CancellationToken.None);
        using var streamed = new MemoryStream();
        await ImageArchiveWriter.WriteStreamingAsync(new ForwardOnly(streamed), image, options, CancellationToken.None);
        streamed.ToArray().ShouldBe(staged.ToArray());
    }

    [Fact]
    public async Task A_layer_file_that_changed_fails_the_stream()
    {
        using var dir = new TempDir();
        var (image, options, layerPath) = await PartialAsync(dir);
        var bytes = File.ReadAllBytes(layerPath);
        bytes[600] ^= 1;
        File.WriteAllBytes(layerPath, bytes);
        await Should.ThrowAsync<ImageFormatException>(() => ImageArchiveWriter.WriteStreamingAsync(new ForwardOnly(new MemoryStream()), image, options, CancellationToken.None));
    }

    [Fact]
    public async Task Layers_of_unknown_size_are_refused_before_anything_is_written()
    {
        using var dir = new TempDir();
        var (image, options, _) = await PartialAsync(dir);
        var output = new MemoryStream();
        await Should.ThrowAsync<ArgumentException>(() => ImageArchiveWriter.WriteStreamingAsync(new ForwardOnly(output), image, options with { OmitLayers = 0 }, CancellationToken.None));
        output.Length.ShouldBe(0);
    }

    /// <summary>A write-only stream that cannot seek (as a pipe).</summary>
    private sealed class ForwardOnly(Stream inner) : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => inner.WriteAsync(buffer, cancellationToken);
    }
}
