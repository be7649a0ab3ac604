using System.Security.Cryptography;
using System.Text;
using LayerTool.Cli;
using LayerTool.Image.Formats;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.IntegrationTests.Build;

/// <summary>
/// Names that are not UTF-8 (legal on Linux: latin-1 <c>caf\xe9</c>, <c>\xff\xfe</c>) through <c>COPY --from</c> (the
/// engine's archive of the source image, rewritten under the destination) and <c>ADD</c> of a local tar (whose
/// symlinked entries LayerTool rewrites before the upload). The classic builder of LayerTool and docker's classic
/// builder must commit layers whose entries are byte-equal: names, link targets, types, modes, owners, content.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class NonUtf8NamesTests(EngineFixture engine) : IDisposable
{
    private static readonly DateTimeOffset Time = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000);

    private readonly string _root = Directory.CreateTempSubdirectory("layertool-nonutf8-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    /// <summary>The bytes of a name written one char per byte (latin-1): "caf\u00e9" is caf\xe9, "\u00ff\u00fe" is \xff\xfe.</summary>
    private static byte[] L(string latin1) => Encoding.Latin1.GetBytes(latin1);

    private static LayerPath P(string latin1) => LayerPath.FromBytes(L(latin1));

    private static async Task WriteTarAsync(string path, IEnumerable<(LayerEntry Entry, byte[]? Content)> entries)
    {
        var file = System.IO.File.Create(path);
        await using var writer = new LayerTarWriter(file);
        foreach (var (entry, content) in entries)
        {
            var e = entry with { ModificationTime = Time, Size = content?.Length ?? 0 };
            await writer.WriteEntryAsync(e, content is null ? null : new MemoryStream(content), CancellationToken.None);
        }
        await writer.FinishAsync(CancellationToken.None);
    }

    private static (LayerEntry, byte[]?) Dir(LayerPath path, int mode = 0x1ED) => (new LayerEntry { Path = path, Type = LayerEntryType.Directory, Mode = mode }, null);

    private static (LayerEntry, byte[]?) Regular(LayerPath path, string content, int mode = 0x1A4, int uid = 0, int gid = 0) =>
        (new LayerEntry { Path = path, Type = LayerEntryType.RegularFile, Mode = mode, Uid = uid, Gid = gid }, Encoding.UTF8.GetBytes(content));

    private static (LayerEntry, byte[]?) Symlink(LayerPath path, byte[] target) =>
        (new LayerEntry { Path = path, Type = LayerEntryType.Symlink, Mode = 0x1FF, LinkTarget = target }, null);

    private static (LayerEntry, byte[]?) HardLink(LayerPath path, LayerPath target) =>
        (new LayerEntry { Path = path, Type = LayerEntryType.HardLink, Mode = 0x1A4, LinkTarget = target.Bytes.ToArray() }, null);

    [Fact]
    public async Task Copy_from_and_add_keep_names_that_are_not_utf8_as_docker_does()
    {
        var id = Guid.NewGuid().ToString("N")[..12];
        var source = $"layertool-test/nonutf8-source:{id}";
        var dockerTag = $"layertool-test/nonutf8-docker:{id}";
        var oursTag = $"layertool-test/nonutf8-ours:{id}";
        try
        {
            // The source image: one layer written by LayerTarWriter, imported by the engine.
            var sourceTar = Path.Combine(_root, "source.tar");
            await WriteTarAsync(sourceTar,
            [
                Dir(P("dir")),
                Regular(P("dir/caf\u00e9"), "latin-1 name\n", mode: 0x1A0, uid: 1000, gid: 1000),
                Dir(P("dir/\u00ff\u00fe"), mode: 0x1E8),
                Regular(P("dir/\u00ff\u00fe/inner\u00e9"), "inside\n", mode: 0x9ED),
                Symlink(P("dir/l\u00e9"), L("caf\u00e9")),
                Symlink(P("dir/abs"), L("/dir/\u00ff\u00fe")),
                HardLink(P("dir/h\u00ff"), P("dir/caf\u00e9")),
            ]);
            await engine.DockerAsync(["import", "--change", $"LABEL {EngineFixture.TestLabel}=1", sourceTar, source]);

            // The build context: a Dockerfile and a local tar with such names, one entry of which goes through a
            // symlink of the tar (so LayerTool rewrites the archive before the upload).
            var context = Directory.CreateDirectory(Path.Combine(_root, "context")).FullName;
            await WriteTarAsync(Path.Combine(context, "names.tar"),
            [
                Dir(P("top\u00e9")),
                Regular(P("top\u00e9/f\u00ff"), "f\n", uid: 7, gid: 8),
                Symlink(P("top\u00e9/s\u00fe"), L("f\u00ff")),
                Symlink(P("lnk\u00e9"), L("top\u00e9")),
                Regular(P("lnk\u00e9/via\u00ff"), "through the link\n"),
                Regular(P("n\u00e9.txt"), "n\n", mode: 0x180),
            ]);
            await System.IO.File.WriteAllTextAsync(Path.Combine(context, "Dockerfile"),
                $"FROM busybox:latest\nCOPY --from={source} /dir /dst\nCOPY --from={source} --chown=5:6 /dir /chowned\nADD names.tar /x/\n");

            var docker = await EngineFixture.RunAsync("docker", ["build", "-q", "--force-rm", "--network", "none", "--label", $"{EngineFixture.TestLabel}=1", "-t", dockerTag, context],
                context, CancellationToken.None, null, new Dictionary<string, string> { ["DOCKER_HOST"] = engine.DockerHost, ["DOCKER_BUILDKIT"] = "0" });
            docker.ExitCode.ShouldBe(0, $"docker build failed:\n{docker.StdErr}");

            var output = new StringWriter();
            var error = new StringWriter();
            var environment = new Dictionary<string, string?>
            {
                ["HOME"] = _root,
                ["XDG_CACHE_HOME"] = Path.Combine(_root, "cache"),
                ["DOCKER_HOST"] = engine.DockerHost,
            };
            var code = await LayerToolApp.RunAsync(
                ["build", "--builder", "classic", "--network", "none", "--no-cache", "--progress", "plain", "--label", $"{EngineFixture.TestLabel}=1", "-t", oursTag, context],
                new CliContext(output, error, () => TextReader.Null, context), CancellationToken.None, name => environment.GetValueOrDefault(name));
            code.ShouldBe(0, $"layertool build failed:\n{error}");

            var expected = await StepLayersAsync(dockerTag, 3);
            var actual = await StepLayersAsync(oursTag, 3);
            for (var i = 0; i < 3; i++)
            {
                var only = expected[i].Except(actual[i]).Select(e => "docker: " + e).Concat(actual[i].Except(expected[i]).Select(e => "ours:   " + e)).ToList();
                only.ShouldBeEmpty($"layer {i + 1} of the 3 steps differs:\n{string.Join('\n', only)}");
            }

            // Not vacuous: the names that are not UTF-8 are there, as bytes.
            static string N(string latin1) => Convert.ToHexStringLower(L(latin1));
            actual[0].Select(e => e.Name).ShouldContain(N("dst/caf\u00e9"));
            actual[0].Select(e => e.Name).ShouldContain(N("dst/\u00ff\u00fe/inner\u00e9"));
            var (link, cafe, chowned) = (N("dst/l\u00e9"), N("caf\u00e9"), N("chowned/caf\u00e9"));
            actual[0].ShouldContain(e => e.Name == link && e.Link == cafe);
            actual[1].ShouldContain(e => e.Name == chowned && e.Owner == "5:6");
            actual[2].Select(e => e.Name).ShouldContain(N("x/top\u00e9/via\u00ff"));
            actual[2].Select(e => e.Name).ShouldContain(N("x/n\u00e9.txt"));
        }
        finally
        {
            await EngineFixture.RunAsync("docker", ["rmi", "-f", dockerTag, oursTag, source], _root, CancellationToken.None, null,
                new Dictionary<string, string> { ["DOCKER_HOST"] = engine.DockerHost });
        }
    }

    /// <summary>One entry of a layer as compared here: every byte of its name and link target (hex), never its time.</summary>
    private sealed record Entry(string Name, LayerEntryType Type, int Mode, string Owner, string? Link, string? Sha256)
    {
        public override string ToString() =>
            $"{LayerPath.Display(Convert.FromHexString(Name))} {Type} {Mode:o} {Owner} {(Link is null ? "" : "-> " + LayerPath.Display(Convert.FromHexString(Link)))} {Sha256?[..12]}";
    }

    /// <summary>The entries of the image's last <paramref name="count"/> layers, read from a <c>docker save</c> with LayerTarReader.</summary>
    private async Task<List<List<Entry>>> StepLayersAsync(string image, int count)
    {
        var archive = Path.Combine(_root, Guid.NewGuid().ToString("N") + ".tar");
        await engine.DockerAsync(["save", "-o", archive, image]);
        using var saved = ImageArchive.Open(archive);
        var layers = saved.GetImage().Layers;
        var result = new List<List<Entry>>();
        foreach (var layer in layers.Skip(layers.Count - count))
        {
            var entries = new List<Entry>();
            await using var reader = new LayerTarReader(layer.Open(CancellationToken.None), namesAsWritten: true);
            while (await reader.ReadNextAsync(CancellationToken.None) is { } e)
            {
                var hash = e.Type == LayerEntryType.RegularFile ? Convert.ToHexStringLower(await SHA256.HashDataAsync(reader.Content)) : null;
                var link = e.Type is LayerEntryType.Symlink or LayerEntryType.HardLink ? Convert.ToHexStringLower(e.LinkTarget) : null;
                entries.Add(new Entry(Convert.ToHexStringLower(reader.NameAsWritten.Span), e.Type, e.Mode, $"{e.Uid}:{e.Gid}", link, hash));
            }
            result.Add(entries);
        }
        System.IO.File.Delete(archive);
        return result;
    }
}
