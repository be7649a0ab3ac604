using System.Text;

namespace LayerTool.Dockerfile.Tests;

/// <summary>Finds and reads the test data under Data/ (copied next to the test assembly).</summary>
internal static class DataFiles
{
    public static string Root => Path.Combine(AppContext.BaseDirectory, "Data");

    /// <summary>The source Data folder, for regenerating golden files (LAYERTOOL_UPDATE_GOLDEN=1).</summary>
    public static string SourceRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "LayerTool.Dockerfile.Tests.csproj")))
                dir = dir.Parent;
            return Path.Combine(dir?.FullName ?? throw new InvalidOperationException("test project folder not found"), "Data");
        }
    }

    public static bool UpdateGolden => Environment.GetEnvironmentVariable("LAYERTOOL_UPDATE_GOLDEN") == "1";

    /// <summary>Reads bytes as UTF-8 keeping a byte-order mark as U+FEFF (the parser must strip it).</summary>
    public static string ReadExact(string path) => new UTF8Encoding(false).GetString(File.ReadAllBytes(path));

    public static TheoryData<string> CaseFolders(string kind)
    {
        var data = new TheoryData<string>();
        foreach (var dir in Directory.GetDirectories(Path.Combine(Root, kind)).Order(StringComparer.Ordinal))
            data.Add(Path.GetFileName(dir));
        return data;
    }

    /// <summary>Non-empty, non-comment (<c>#</c> at column 1) lines of a one-case-per-line file, as theory rows.</summary>
    public static TheoryData<string> Lines(string file)
    {
        var data = new TheoryData<string>();
        foreach (var line in File.ReadAllLines(Path.Combine(Root, file)))
        {
            if (line.Length == 0 || line.StartsWith('#'))
                continue;
            data.Add(line);
        }

        return data;
    }

    /// <summary>Compares with a golden file, or rewrites it when LAYERTOOL_UPDATE_GOLDEN=1.</summary>
    public static void ShouldMatchGolden(string actual, string kind, string caseName, string file)
    {
        var path = Path.Combine(Root, kind, caseName, file);
        if (UpdateGolden)
        {
            File.WriteAllText(Path.Combine(SourceRoot, kind, caseName, file), actual);
            return;
        }

        File.Exists(path).ShouldBeTrue($"missing golden file {kind}/{caseName}/{file}");
        actual.ShouldBe(File.ReadAllText(path));
    }
}
