using System.Text;
using LayerTool.Image;

namespace LayerTool.Image.Tests.Formats;

public class DigestTests
{
    private const string EmptySha256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    [Fact]
    public void Computes_sha256_of_bytes_and_streams()
    {
        Digest.Compute(ReadOnlySpan<byte>.Empty).ToString().ShouldBe(EmptySha256);
        Digest.Compute(new MemoryStream()).ToString().ShouldBe(EmptySha256);
        Digest.Compute(Encoding.ASCII.GetBytes("abc")).Hex.ShouldBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    [Fact]
    public async Task Computes_asynchronously()
    {
        var digest = await Digest.ComputeAsync(new MemoryStream(), CancellationToken.None);
        digest.ToString().ShouldBe(EmptySha256);
    }

    [Fact]
    public void Parses_and_round_trips()
    {
        var digest = Digest.Parse(EmptySha256);
        digest.Algorithm.ShouldBe("sha256");
        digest.ToString().ShouldBe(EmptySha256);
        digest.ShouldBe(Digest.Compute(ReadOnlySpan<byte>.Empty));
    }

    [Theory]
    [InlineData("", "format")]
    [InlineData("sha256", "format")]
    [InlineData("sha256:", "format")]
    [InlineData(":abc", "format")]
    [InlineData("md5:d41d8cd98f00b204e9800998ecf8427e", "unsupported")]
    [InlineData("sha256:e3b0c44298fc1c149afbf4c8996fb924", "length")]
    [InlineData("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", "format")]
    [InlineData("sha256:g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "format")]
    public void Rejects_invalid_digests(string value, string reason)
    {
        Digest.TryParse(value, out _, out var error).ShouldBeFalse();
        error.ShouldContain(reason);
        Should.Throw<ImageFormatException>(() => Digest.Parse(value));
    }
}
