using LayerTool.Image;

namespace LayerTool.Image.Tests.Formats;

public class ImageReferenceTests
{
    public static TheoryData<string, string, string?> Cases()
    {
        var data = new TheoryData<string, string, string?>();
        var path = Path.Combine(AppContext.BaseDirectory, "Formats", "Data", "references.txt");
        foreach (var line in File.ReadLines(path))
        {
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var parts = line.Split(" | ");
            var input = parts[0] == "<empty>" ? string.Empty : parts[0];
            data.Add(input, parts[1], parts.Length > 2 ? parts[2] : null);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Normalises_like_docker(string input, string expected, string? familiar)
    {
        if (expected.StartsWith("error: ", StringComparison.Ordinal))
        {
            ImageReference.TryParse(input, out _, out var error).ShouldBeFalse();
            error.ShouldContain(expected["error: ".Length..]);
            Should.Throw<ImageFormatException>(() => ImageReference.Parse(input));
            return;
        }

        ImageReference.TryParse(input, out var reference, out var message).ShouldBeTrue(message);
        reference.ToString().ShouldBe(expected);
        reference.FamiliarString.ShouldBe(familiar);
        ImageReference.Parse(reference.ToString()).ShouldBe(reference);
        ImageReference.Parse(reference.FamiliarString).ShouldBe(reference);
    }

    [Fact]
    public void Exposes_the_parts()
    {
        var reference = ImageReference.Parse("localhost:5000/team/app:v1");
        reference.Registry.ShouldBe("localhost:5000");
        reference.Repository.ShouldBe("team/app");
        reference.Tag.ShouldBe("v1");
        reference.Digest.ShouldBeNull();
        reference.Name.ShouldBe("localhost:5000/team/app");
        reference.FamiliarName.ShouldBe("localhost:5000/team/app");
        reference.WithTag("v2").ToString().ShouldBe("localhost:5000/team/app:v2");
    }

    [Fact]
    public void The_table_has_enough_rows() => Cases().Count.ShouldBeGreaterThanOrEqualTo(50);
}
