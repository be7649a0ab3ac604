using System.Text.Json.Nodes;
using LayerTool.Image.Rebase;
using static LayerTool.Image.Tests.Rebase.RebaseTestImages;

namespace LayerTool.Image.Tests.Rebase;

/// <summary><see cref="Rebaser"/>: the prefix check, the layers kept byte for byte, rootfs and history rebuilt, the base labels.</summary>
public sealed class RebaserTests
{
    private static readonly MemoryLayer V1 = Layer(t => t.Dir("lib").File("lib/libssl.so", "v1").File("lib/old.so", "old"));
    private static readonly MemoryLayer V2 = Layer(t => t.Dir("lib").File("lib/libssl.so", "v2").File("lib/new.so", "new"));
    private static readonly MemoryLayer App1 = Layer(t => t.Dir("app").File("app/a", "a"));
    private static readonly MemoryLayer App2 = Layer(t => t.Dir("app").File("app/b", "b"));

    private static readonly ComposedImage OldBase = MakeImage("old", [V1], new JsonObject { ["Cmd"] = Strings(["sh"]) },
        emptyAfter: new Dictionary<int, string[]> { [0] = ["CMD [\"sh\"]"] });

    private static readonly ComposedImage NewBase = MakeImage("new", [V2], new JsonObject { ["Cmd"] = Strings(["sh"]) },
        emptyAfter: new Dictionary<int, string[]> { [0] = ["LABEL patched", "CMD [\"sh\"]"] });

    private static ComposedImage App(IReadOnlyDictionary<int, string[]>? emptyAfter = null) =>
        MakeImage("app", [V1, App1, App2], new JsonObject { ["Cmd"] = Strings(["/app/a"]) }, emptyAfter, HistoryOf(OldBase));

    [Fact]
    public void The_result_is_the_new_base_then_the_own_layers_unchanged()
    {
        var app = App();
        var result = Rebaser.Rebase(new RebaseRequest { Image = app, OldBase = OldBase, NewBase = NewBase, NewBaseName = "base:v2" });
        result.Image.Layers.ShouldBe([V2, App1, App2]);
        result.Image.Config.DiffIds.ShouldBe([V2.DiffId, App1.DiffId, App2.DiffId]);
        result.NewBaseLayers.ShouldBe(1);
        result.OldBaseLayers.ShouldBe(1);
        result.OwnLayers.ShouldBe([App1, App2]);
        result.ImageId.ShouldBe(result.Image.Config.Digest);
        result.Image.Config.Config.Cmd.ShouldBe(["/app/a"]);
        result.Image.Config.Created.ShouldBe(app.Config.Created);
    }

    [Fact]
    public void History_is_the_new_bases_then_the_images_own_entries()
    {
        var app = App(new Dictionary<int, string[]> { [1] = ["ENV A=1"], [2] = ["CMD [\"/app/a\"]"] });
        var config = Rebaser.Rebase(new RebaseRequest { Image = app, OldBase = OldBase, NewBase = NewBase }).Image.Config;
        config.History.Select(h => h.CreatedBy).ShouldBe(["new layer 0", "LABEL patched", "CMD [\"sh\"]", "app layer 1", "ENV A=1", "app layer 2", "CMD [\"/app/a\"]"]);
        config.History.Count(h => !h.EmptyLayer).ShouldBe(config.DiffIds.Count);
    }

    [Fact]
    public void Without_the_old_bases_history_on_top_the_cut_is_after_the_old_bases_last_layer_entry()
    {
        // The image's history does not start with the old base's entries (e.g. the base's history was rewritten):
        // the empty entries after the old base's last layer count as the image's own.
        var app = MakeImage("app", [V1, App1], emptyAfter: new Dictionary<int, string[]> { [0] = ["ENV MINE=1"] });
        var config = Rebaser.Rebase(new RebaseRequest { Image = app, OldBase = OldBase, NewBase = NewBase }).Image.Config;
        config.History.Select(h => h.CreatedBy).ShouldBe(["new layer 0", "LABEL patched", "CMD [\"sh\"]", "ENV MINE=1", "app layer 1"]);
    }

    [Fact]
    public void An_old_base_that_is_not_a_prefix_is_refused()
    {
        var other = MakeImage("other", [App1]);
        var e = Should.Throw<RebaseException>(() => Rebaser.Rebase(new RebaseRequest { Image = App(), OldBase = other, NewBase = NewBase }));
        e.Message.ShouldContain("not a base of the image: layer 1 differs");
        e.Message.ShouldContain("--from");
        var longer = MakeImage("longer", [V1, App1, App2, V2]);
        Should.Throw<RebaseException>(() => Rebaser.CheckPrefix(App().Config, longer.Config)).Message.ShouldContain("it has 4 layers");
    }

    [Fact]
    public void The_base_labels_name_the_new_base()
    {
        var app = MakeImage("app", [V1, App1], new JsonObject
        {
            ["Labels"] = new JsonObject { [SquashConfig.BaseNameLabel] = "base:v1", [SquashConfig.BaseDigestLabel] = "sha256:" + new string('1', 64), ["app"] = "x" },
        });
        var digest = Digest.Parse("sha256:" + new string('2', 64));
        var labels = Rebaser.Rebase(new RebaseRequest { Image = app, OldBase = OldBase, NewBase = NewBase, NewBaseName = "base:v2", NewBaseDigest = digest })
            .Image.Config.Config.Labels!;
        labels[SquashConfig.BaseNameLabel].ShouldBe("base:v2");
        labels[SquashConfig.BaseDigestLabel].ShouldBe(digest.ToString());
        labels["app"].ShouldBe("x");
    }

    [Fact]
    public void Rebasing_onto_the_old_base_itself_gives_the_same_layers_and_history()
    {
        var app = App(new Dictionary<int, string[]> { [2] = ["CMD [\"/app/a\"]"] });
        var config = Rebaser.Rebase(new RebaseRequest { Image = app, OldBase = OldBase, NewBase = OldBase }).Image.Config;
        config.DiffIds.ShouldBe(app.Config.DiffIds);
        config.History.ShouldBe(app.Config.History);
    }

    [Fact]
    public void Base_config_differences_are_reported_and_applied_only_when_taken()
    {
        var oldBase = MakeImage("old", [V1], new JsonObject { ["Env"] = Strings(["PATH=/bin", "SSL=1"]), ["User"] = "1000", ["WorkingDir"] = "/" });
        var newBase = MakeImage("new", [V2], new JsonObject { ["Env"] = Strings(["PATH=/usr/bin:/bin", "NEW=1"]), ["User"] = "1001", ["WorkingDir"] = "/" });
        var app = MakeImage("app", [V1, App1], new JsonObject { ["Env"] = Strings(["PATH=/bin", "SSL=1", "APP=1"]), ["User"] = "app", ["WorkingDir"] = "/app" });

        var plain = Rebaser.Rebase(new RebaseRequest { Image = app, OldBase = oldBase, NewBase = newBase });
        plain.ConfigDifferences.Select(d => (d.Key, d.IsConflict)).ShouldBe([("Env.NEW", true), ("Env.PATH", true), ("Env.SSL", true), ("User", false)]);
        plain.Image.Config.Config.Env.ShouldBe(["PATH=/bin", "SSL=1", "APP=1"]);

        var taken = Rebaser.Rebase(new RebaseRequest { Image = app, OldBase = oldBase, NewBase = newBase, TakeBaseConfig = ["env.PATH", "User"] });
        taken.ConfigDifferences.Where(d => d.Applied).Select(d => d.Key).ShouldBe(["Env.PATH", "User"]);
        taken.Image.Config.Config.Env.ShouldBe(["PATH=/usr/bin:/bin", "SSL=1", "APP=1"]);
        taken.Image.Config.Config.User.ShouldBe("1001");

        var all = Rebaser.Rebase(new RebaseRequest { Image = app, OldBase = oldBase, NewBase = newBase, TakeBaseConfig = ["Env"] });
        all.Image.Config.Config.Env.ShouldBe(["PATH=/usr/bin:/bin", "APP=1", "NEW=1"]);
        all.ConfigDifferences.Count(d => d.IsConflict).ShouldBe(0);
    }

    [Fact]
    public void An_unknown_take_base_config_key_is_refused()
    {
        Should.Throw<RebaseException>(() => BaseConfigDiff.Normalize("Volumes")).Message.ShouldContain("not a config key");
        Should.Throw<RebaseException>(() => BaseConfigDiff.Normalize("User.x"));
        BaseConfigDiff.Normalize("workingdir").ShouldBe("WorkingDir");
        BaseConfigDiff.Normalize("labels.org.x").ShouldBe("Labels.org.x");
    }

    [Fact]
    public void The_old_base_is_named_by_annotations_before_labels()
    {
        var labelled = MakeImage("app", [V1, App1], new JsonObject { ["Labels"] = new JsonObject { [SquashConfig.BaseNameLabel] = "base:v1" } });
        OldBaseHint.Of(labelled.Config, null).ShouldBe(new OldBaseHint("base:v1", null, "label"));
        var annotations = new Dictionary<string, string> { [SquashConfig.BaseNameLabel] = "reg/base:7", [SquashConfig.BaseDigestLabel] = "sha256:" + new string('a', 64) };
        var hint = OldBaseHint.Of(labelled.Config, annotations)!;
        hint.Source.ShouldBe("annotation");
        hint.Candidates().ShouldBe(["sha256:" + new string('a', 64), "reg/base@sha256:" + new string('a', 64), "reg/base:7"]);
        OldBaseHint.Of(MakeImage("plain", [V1]).Config, null).ShouldBeNull();
    }

    [Fact]
    public void The_longest_prefix_that_is_a_base_is_chosen()
    {
        var ids = App().Config.DiffIds;
        OldBaseHint.LongestPrefix(ids, [("one", [ids[0]]), ("two", [ids[0], ids[1]]), ("all", ids), ("other", [App2.DiffId])]).ShouldBe("two");
        OldBaseHint.LongestPrefix(ids, [("other", (IReadOnlyList<Digest>)[App2.DiffId])]).ShouldBeNull();
    }
}
