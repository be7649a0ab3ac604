using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Layers.Index;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.Image.Tests.Layers;

public class LayerRefusalTests
{
    [Theory]
    [InlineData("../../etc/cron.d/x", '0', "")]
    [InlineData("/etc/cron.d/x", '0', "")]
    [InlineData("ok/link", '1', "../../etc/shadow")]
    [InlineData("ok/link", '1', "/etc/shadow")]
    public async Task A_layer_escaping_the_root_is_refused_with_its_path(string name, char type, string link)
    {
        var evil = TarCodecTests.RawTar(name, type, link);
        var ex = await Should.ThrowAsync<ImageFormatException>(() => FsIndex.FromLayersAsync([DiffHarness.Opener(evil)], default));
        ex.Message.ShouldContain(name);
        ex.Message.ShouldContain(link);
    }

    [Fact]
    public async Task A_diff_refuses_a_final_file_whose_name_reads_as_a_whiteout()
    {
        var export = new TarBuilder().File(".wh.secret", "literal file in a container").Build();
        await using var reader = new LayerTarReader(new MemoryStream(export));
        var ex = await Should.ThrowAsync<ImageFormatException>(() => LayerDiff.WriteAsync(FsIndex.Empty, reader, new MemoryStream(), null, default));
        ex.Message.ShouldContain(".wh.secret");
    }
}
