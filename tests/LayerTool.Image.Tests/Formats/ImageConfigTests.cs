using System.Text;
using System.Text.Json.Nodes;
using LayerTool.Image;

namespace LayerTool.Image.Tests.Formats;

public class ImageConfigTests
{
    private const string Docker = """
        {"architecture":"amd64","config":{"Hostname":"","User":"app","Env":["PATH=/bin"],"Cmd":["sh","-c","run"],"Healthcheck":{"Test":["CMD-SHELL","true"],"Interval":30000000000,"Retries":3},"ArgsEscaped":true,"Image":"sha256:abc","Volumes":{"/data":{}},"WorkingDir":"/app","Entrypoint":null,"OnBuild":null,"Labels":{"a":"b"},"StopSignal":"SIGTERM","Shell":["/bin/bash","-c"],"ExposedPorts":{"443/tcp":{},"80/tcp":{}}},"container":"c0ffee","created":"2024-02-03T04:05:06.789Z","docker_version":"20.10.24","history":[{"created":"2024-02-03T04:05:06Z","created_by":"/bin/sh -c #(nop) ADD file:x in / ","comment":"c"},{"created":"2024-02-03T04:05:06Z","created_by":"/bin/sh -c #(nop)  CMD [\"sh\"]","empty_layer":true}],"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]}}
        """;

    [Fact]
    public void Reads_the_docker_fields()
    {
        var config = ImageConfig.Parse(Encoding.UTF8.GetBytes(Docker.Trim()));
        config.Architecture.ShouldBe("amd64");
        config.Os.ShouldBe("linux");
        config.CreatedTime.ShouldBe(new DateTimeOffset(2024, 2, 3, 4, 5, 6, 789, TimeSpan.Zero));
        config.Config.User.ShouldBe("app");
        config.Config.Cmd.ShouldBe(["sh", "-c", "run"]);
        config.Config.Entrypoint.ShouldBeNull();
        config.Config.WorkingDir.ShouldBe("/app");
        config.Config.Volumes.ShouldBe(["/data"]);
        config.Config.ExposedPorts.ShouldBe(["443/tcp", "80/tcp"]);
        config.Config.StopSignal.ShouldBe("SIGTERM");
        config.Config.Shell.ShouldBe(["/bin/bash", "-c"]);
        config.Config.ArgsEscaped.ShouldBe(true);
        config.Config.Healthcheck!.Test.ShouldBe(["CMD-SHELL", "true"]);
        config.Config.Healthcheck.Interval.ShouldBe(TimeSpan.FromSeconds(30));
        config.Config.Healthcheck.Retries.ShouldBe(3);
        config.DiffIds.Single().ShouldBe(Digest.Compute(ReadOnlySpan<byte>.Empty));
        config.History.Count.ShouldBe(2);
        config.History[0].Comment.ShouldBe("c");
        config.History[1].EmptyLayer.ShouldBeTrue();
        config.Digest.ShouldBe(Digest.Compute(Encoding.UTF8.GetBytes(Docker.Trim())));
    }

    [Fact]
    public void Edits_keep_every_field_it_does_not_know()
    {
        var config = ImageConfig.Parse(Encoding.UTF8.GetBytes(Docker.Trim()));
        var edited = config.WithContainerConfig(config.Config with { Env = ["PATH=/usr/bin"], Cmd = null, Entrypoint = [] });
        var json = edited.ToJson();
        json["container"]!.GetValue<string>().ShouldBe("c0ffee");
        json["docker_version"]!.GetValue<string>().ShouldBe("20.10.24");
        json["config"]!["Hostname"]!.GetValue<string>().ShouldBe(string.Empty);
        json["config"]!["Image"]!.GetValue<string>().ShouldBe("sha256:abc");
        edited.Config.Env.ShouldBe(["PATH=/usr/bin"]);
        edited.Config.Cmd.ShouldBeNull();
        edited.Config.Entrypoint.ShouldBe([]);
        edited.Config.Healthcheck!.Test.ShouldBe(["CMD-SHELL", "true"]);
        edited.Config.Healthcheck.Interval.ShouldBe(TimeSpan.FromSeconds(30));
        edited.Config.Healthcheck.Retries.ShouldBe(3);
        edited.Config.Labels.ShouldBe(config.Config.Labels);
        config.Config.Env.ShouldBe(["PATH=/bin"], "the original is unchanged");
    }

    [Fact]
    public void Writes_compactly_and_keeps_the_original_bytes_until_edited()
    {
        var pretty = "{\n  \"os\": \"linux\",\n  \"architecture\": \"arm64\",\n  \"x\": \"\u00e9\"\n}";
        var config = ImageConfig.Parse(Encoding.UTF8.GetBytes(pretty));
        Encoding.UTF8.GetString(config.Bytes.Span).ShouldBe(pretty);
        var canonical = config.Canonicalize();
        Encoding.UTF8.GetString(canonical.Bytes.Span).ShouldBe("{\"os\":\"linux\",\"architecture\":\"arm64\",\"x\":\"\u00e9\"}");
        canonical.Digest.ShouldNotBe(config.Digest);
        config.WithDiffIds([Digest.Compute("x"u8)]).DiffIds.ShouldBe([Digest.Compute("x"u8)]);
        config.WithCreated(new DateTimeOffset(2020, 1, 2, 3, 4, 5, TimeSpan.Zero).AddTicks(1234500)).Created.ShouldBe("2020-01-02T03:04:05.12345Z");
    }

    [Theory]
    [InlineData("[]", "expected a JSON object")]
    [InlineData("{", "invalid JSON")]
    [InlineData("{\"rootfs\":{\"diff_ids\":[\"sha256:nothex\"]}}", "diff_ids")]
    [InlineData("{\"history\":{}}", "'history' must be an array")]
    [InlineData("{\"config\":{\"Env\":\"A=1\"}}", "'Env' must be an array of strings")]
    [InlineData("{\"os\":\"linux\",\"config\":{\"Env\":[],\"Env\":[]}}", "invalid JSON")]
    public void Bad_configs_are_format_errors(string json, string message)
    {
        Should.Throw<ImageFormatException>(() => ImageConfig.Parse(Encoding.UTF8.GetBytes(json))).Message.ShouldContain(message);
    }

    [Fact]
    public void Manifests_and_indexes_round_trip()
    {
        var layer = new Descriptor(MediaTypes.OciLayerGzip, Digest.Compute("l"u8), 10);
        var manifest = new ImageManifest(MediaTypes.OciManifest, new Descriptor(MediaTypes.OciConfig, Digest.Compute("c"u8), 5), [layer]);
        var parsed = ImageManifest.Parse(manifest.ToBytes());
        parsed.Config.ShouldBe(manifest.Config);
        parsed.Layers.ShouldBe([layer]);

        var entry = new Descriptor(MediaTypes.OciManifest, Digest.Compute("m"u8), 7)
        {
            Platform = new Platform("arm64", "linux") { Variant = "v8" },
            Annotations = new Dictionary<string, string> { ["org.opencontainers.image.ref.name"] = "v1" },
        };
        var index = ImageIndex.Parse(new ImageIndex([entry]).ToBytes());
        index.Manifests.Single().Platform.ShouldBe(entry.Platform);
        index.Manifests.Single().Annotation("org.opencontainers.image.ref.name").ShouldBe("v1");
        Should.Throw<ImageFormatException>(() => ImageManifest.Parse(new ImageIndex([entry]).ToBytes())).Message.ShouldContain("index");
        Should.Throw<ImageFormatException>(() => ImageManifest.Parse("{\"schemaVersion\":1}"u8)).Message.ShouldContain("schemaVersion 1");
        _ = JsonNode.Parse(manifest.ToBytes());
    }
}
