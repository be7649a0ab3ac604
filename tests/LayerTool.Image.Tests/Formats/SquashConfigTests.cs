using System.Text;
using System.Text.Json.Nodes;
using LayerTool.Image;

namespace LayerTool.Image.Tests.Formats;

public class SquashConfigTests
{
    private static readonly Digest NewLayer = Digest.Compute("new layer"u8);

    private static ImageConfig Config(string seed, IEnumerable<string> diffIds, JsonArray history, JsonObject? extra = null)
    {
        var json = new JsonObject
        {
            ["architecture"] = "amd64",
            ["os"] = "linux",
            ["created"] = "2024-05-06T07:08:09Z",
            ["config"] = new JsonObject
            {
                ["Env"] = new JsonArray("SEED=" + seed),
                ["Entrypoint"] = new JsonArray(),
                ["Labels"] = new JsonObject { ["seed"] = seed },
                ["Unknown"] = "kept",
            },
            ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray(diffIds.Select(d => (JsonNode)d).ToArray()) },
            ["history"] = history,
        };
        foreach (var (key, value) in extra ?? [])
        {
            json[key] = value?.DeepClone();
        }

        return ImageConfig.Parse(Encoding.UTF8.GetBytes(json.ToJsonString()));
    }

    private static JsonObject Step(string createdBy, bool empty = false)
    {
        var step = new JsonObject { ["created"] = "2024-01-01T00:00:00Z", ["created_by"] = createdBy };
        if (empty)
        {
            step["empty_layer"] = true;
        }

        return step;
    }

    private static readonly string[] BaseIds = [Digest.Compute("b1"u8).ToString(), Digest.Compute("b2"u8).ToString()];
    private static readonly string[] FinalIds = [.. BaseIds, Digest.Compute("f1"u8).ToString(), Digest.Compute("f2"u8).ToString()];

    private static ImageConfig Base() => Config("base", BaseIds, [Step("ADD rootfs"), Step("CMD sh", empty: true), Step("RUN base")]);

    private static ImageConfig Final() => Config(
        "final",
        FinalIds,
        [Step("ADD rootfs"), Step("CMD sh", empty: true), Step("RUN base"), Step("RUN one"), Step("ENV A=1", empty: true), Step("RUN two")],
        new JsonObject { ["moby.unknown"] = new JsonObject { ["x"] = 1 } });

    [Fact]
    public void Keeps_base_history_marks_the_squashed_steps_empty_and_adds_one_entry()
    {
        var result = SquashConfig.Create(new SquashConfigOptions
        {
            Final = Final(),
            Base = Base(),
            NewLayerDiffId = NewLayer,
            Message = "squashed for release",
            BaseName = "docker.io/library/base:1",
            BaseDigest = Digest.Compute("base manifest"u8),
        });

        result.DiffIds.Select(d => d.ToString()).ShouldBe([.. BaseIds, NewLayer.ToString()]);
        result.History.Select(h => (h.CreatedBy, h.EmptyLayer)).ShouldBe([
            ("ADD rootfs", false), ("CMD sh", true), ("RUN base", false),
            ("RUN one", true), ("ENV A=1", true), ("RUN two", true),
            ("layertool squash", false),
        ]);
        result.History[^1].Comment.ShouldBe("squashed for release");
        result.History[^1].Created.ShouldBe("2024-05-06T07:08:09Z");
        result.History.Count(h => !h.EmptyLayer).ShouldBe(result.DiffIds.Count);
        result.Config.Env.ShouldBe(["SEED=final"]);
        result.Config.Entrypoint.ShouldBe([]);
        result.Config.Labels!["seed"].ShouldBe("final");
        result.Config.Labels[SquashConfig.BaseNameLabel].ShouldBe("docker.io/library/base:1");
        result.Config.Labels[SquashConfig.BaseDigestLabel].ShouldBe(Digest.Compute("base manifest"u8).ToString());
        result.ToJson()["moby.unknown"]!["x"]!.GetValue<int>().ShouldBe(1);
        result.ToJson()["config"]!["Unknown"]!.GetValue<string>().ShouldBe("kept");
        result.Created.ShouldBe("2024-05-06T07:08:09Z");
    }

    [Fact]
    public void Is_deterministic_and_its_digest_is_the_image_id()
    {
        var options = new SquashConfigOptions { Final = Final(), Base = Base(), NewLayerDiffId = NewLayer, Created = DateTimeOffset.FromUnixTimeSeconds(1700000000) };
        var one = SquashConfig.Create(options);
        var two = SquashConfig.Create(options);
        one.Bytes.ToArray().ShouldBe(two.Bytes.ToArray());
        one.Digest.ShouldBe(Digest.Compute(one.Bytes.Span));
        Encoding.UTF8.GetString(one.Bytes.Span).ShouldNotContain("\n");
        Encoding.UTF8.GetString(one.Bytes.Span).ShouldNotContain(": ");
        one.Created.ShouldBe("2023-11-14T22:13:20Z");
        one.History[^1].Created.ShouldBe("2023-11-14T22:13:20Z");
        SquashConfig.Create(options with { Message = "other" }).Digest.ShouldNotBe(one.Digest);
    }

    [Fact]
    public void Onto_a_non_ancestor_keeps_the_final_steps_beyond_the_shared_history()
    {
        var other = Config("other", [BaseIds[0], Digest.Compute("o1"u8).ToString()], [Step("ADD rootfs"), Step("RUN other")]);
        var result = SquashConfig.Create(new SquashConfigOptions { Final = Final(), Base = other, NewLayerDiffId = NewLayer });
        result.History.Select(h => (h.CreatedBy, h.EmptyLayer)).ShouldBe([
            ("ADD rootfs", false), ("RUN other", false),
            ("CMD sh", true), ("RUN base", true), ("RUN one", true), ("ENV A=1", true), ("RUN two", true),
            ("layertool squash", false),
        ]);
        result.DiffIds.Count.ShouldBe(3);
    }

    [Fact]
    public void Onto_scratch_has_one_layer_and_drops_stale_base_labels()
    {
        var final = Final().WithLabels([new(SquashConfig.BaseNameLabel, "stale")]);
        var result = SquashConfig.Create(new SquashConfigOptions { Final = final, NewLayerDiffId = NewLayer, CreatedBy = "layertool squash --onto scratch" });
        result.DiffIds.ShouldBe([NewLayer]);
        result.History.Count(h => h.EmptyLayer).ShouldBe(6);
        result.History[^1].CreatedBy.ShouldBe("layertool squash --onto scratch");
        result.Config.Labels!.ContainsKey(SquashConfig.BaseNameLabel).ShouldBeFalse();
    }

    [Fact]
    public void Without_a_new_layer_the_squash_entry_is_empty()
    {
        var result = SquashConfig.Create(new SquashConfigOptions { Final = Base(), Base = Base() });
        result.DiffIds.Select(d => d.ToString()).ShouldBe(BaseIds);
        result.History.Count.ShouldBe(4);
        result.History[^1].EmptyLayer.ShouldBeTrue();
    }
}
