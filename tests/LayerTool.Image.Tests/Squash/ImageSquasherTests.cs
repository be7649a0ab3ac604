using System.Security.Cryptography;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Layers.Index;
using LayerTool.Image.Squash;
using LayerTool.Image.Tests.Formats;
using LayerTool.Image.Tests.Layers;

namespace LayerTool.Image.Tests.Squash;

/// <summary>
/// <see cref="ImageSquasher"/> on synthetic images: a layer written to a stream (the streamed load) is the one
/// written to a file, byte for byte; and a layer that does not reproduce the image fails the check in either mode.
/// </summary>
public sealed class ImageSquasherTests : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("layertool-squasher-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    private static readonly TestImage BaseImage = TestImage.Create(2, "base");

    private static readonly TestImage FinalImage = TestImage.Create(3, "final", baseLayers: BaseImage.Layers);

    private static ComposedImage Image(TestImage image) => new ComposedImage(ImageConfig.Parse(image.Config),
        [.. image.Layers.Select(l => (ILayer)new DescribedLayer(Digest.Compute(l), null))]);

    private async Task<SquashSpec> SpecAsync(SquashLayerWriter? writer = null)
    {
        var baseIndex = await FsIndex.FromLayersAsync(BaseImage.Layers.Select(DiffHarness.Opener), CancellationToken.None);
        var finalLayers = FinalImage.Layers.Select(DiffHarness.Opener).ToList();
        return new SquashSpec
        {
            Final = Image(FinalImage),
            Base = Image(BaseImage),
            BaseIndex = baseIndex,
            Timestamp = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000),
            TempDirectory = _temp,
            WriteLayer = writer ?? ((index, output, options, ct) => LayerDiff.WriteFromLayersAsync(index, finalLayers, output, options, ct)),
        };
    }

    [Fact]
    public async Task A_layer_written_to_a_stream_is_the_file_layer_byte_for_byte()
    {
        var spec = await SpecAsync();
        using var toFile = await ImageSquasher.SquashAsync(spec, null, CancellationToken.None);
        var file = toFile.NewLayer.ShouldBeOfType<FileLayer>();
        byte[] fileBytes;
        using (var read = new MemoryStream())
        {
            await using (var layer = file.Open(CancellationToken.None)) await layer.CopyToAsync(read);
            fileBytes = read.ToArray();
        }

        using var sink = new MemoryStream();
        using var toStream = await ImageSquasher.SquashAsync(spec with { LayerStream = sink }, null, CancellationToken.None);
        toStream.NewLayer.ShouldBeOfType<DescribedLayer>().DiffId.ShouldBe(file.DiffId);
        sink.ToArray().ShouldBe(fileBytes);
        toStream.LayerSize.ShouldBe(fileBytes.LongLength);
        toStream.ImageId.ShouldBe(toFile.ImageId);
        Digest.Compute(fileBytes).ShouldBe(file.DiffId);
        Directory.GetFiles(_temp, "layertool-squash-*").Length.ShouldBe(1, "only the file-mode squash keeps a layer file");
    }

    [Fact]
    public async Task A_stream_cannot_be_verified_by_reading_it_back()
    {
        var spec = await SpecAsync();
        using var sink = new MemoryStream();
        await Should.ThrowAsync<ArgumentException>(() => ImageSquasher.SquashAsync(spec with { LayerStream = sink, VerifyByRereading = true }, null, CancellationToken.None));
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    public async Task A_layer_that_does_not_reproduce_the_image_fails_the_check(bool toStream, bool reread)
    {
        // A writer that ignores the base: it diffs the empty filesystem against the top layer alone, so its
        // final filesystem lacks the base's files while its layer has no whiteouts for them.
        var top = FinalImage.Layers[^1];
        SquashLayerWriter wrong = (_, output, options, ct) => LayerDiff.WriteFromLayersAsync(FsIndex.Empty, [DiffHarness.Opener(top)], output, options, ct);
        var spec = await SpecAsync(wrong);
        using var sink = new MemoryStream();
        var e = await Should.ThrowAsync<SquashVerificationException>(() => ImageSquasher.SquashAsync(
            spec with { LayerStream = toStream ? sink : null, VerifyByRereading = reread }, null, CancellationToken.None));
        e.Message.ShouldContain("does not reproduce");
        Directory.GetFiles(_temp, "layertool-squash-*").ShouldBeEmpty("a failed squash leaves no layer file");
    }
}
