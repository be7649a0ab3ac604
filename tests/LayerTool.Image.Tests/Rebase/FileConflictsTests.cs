using System.Text.Json.Nodes;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Diff;
using LayerTool.Image.Rebase;
using static LayerTool.Image.Tests.Rebase.RebaseTestImages;

namespace LayerTool.Image.Tests.Rebase;

/// <summary><see cref="FileConflicts"/>: each kind of hidden patch, the topmost layer deciding, and the report's JSON.</summary>
public sealed class FileConflictsTests
{
    private static readonly ComposedImage OldBase = MakeImage("old", [Layer(t => t
        .Dir("etc").Dir("etc/ssl").File("etc/ssl/cert.pem", "cert v1")
        .Dir("lib").File("lib/libssl.so", "ssl v1").File("lib/old.so", "old")
        .Dir("usr").Dir("usr/share").Dir("usr/share/doc").File("usr/share/doc/readme", "doc v1"))]);

    private static readonly ComposedImage NewBase = MakeImage("new", [Layer(t => t
        .Dir("etc").Dir("etc/ssl").File("etc/ssl/cert.pem", "cert v2")
        .Dir("lib").File("lib/libssl.so", "ssl v2").File("lib/new.so", "new")
        .Dir("opt").File("opt/tool", "tool from the base")
        .Dir("usr").Dir("usr/share").Dir("usr/share/doc").File("usr/share/doc/readme", "doc v2"))]);

    private static async Task<IReadOnlyList<FileConflict>> FindAsync(params MemoryLayer[] own)
    {
        using var oldIndex = await IndexAsync(OldBase);
        using var newIndex = await IndexAsync(NewBase);
        return await FileConflicts.FindAsync(oldIndex, newIndex, own, CancellationToken.None);
    }

    [Fact]
    public async Task Each_kind_is_reported_with_its_path_and_layer()
    {
        var conflicts = await FindAsync(
            Layer(t => t.Dir("lib").File("lib/libssl.so", "my own ssl").Dir("opt").File("opt/tool", "my tool")),
            Layer(t => t.Dir("usr/share").Whiteout("usr/share/doc")),
            Layer(t => t.Dir("etc/ssl").Opaque("etc/ssl").File("etc/ssl/mine.pem", "mine")));
        conflicts.Select(c => (c.Path, c.Kind, c.BaseChange, c.Layer)).ShouldBe([
            ("etc/ssl/cert.pem", FileConflictKind.Opaque, FsChangeKind.Changed, 3),
            ("lib/libssl.so", FileConflictKind.Overwritten, FsChangeKind.Changed, 1),
            ("opt/tool", FileConflictKind.Info, FsChangeKind.Added, 1),
            ("usr/share/doc/readme", FileConflictKind.Deleted, FsChangeKind.Changed, 2),
        ]);
        conflicts[1].Detail.ShouldNotBeNull().ShouldContain("content differs");
    }

    [Fact]
    public async Task Layers_that_do_not_touch_the_changed_paths_have_no_conflict()
    {
        (await FindAsync(Layer(t => t.Dir("app").File("app/main", "x")), Layer(t => t.Dir("lib").File("lib/other.so", "o")))).ShouldBeEmpty();
    }

    [Fact]
    public async Task The_topmost_layer_that_touches_a_path_decides()
    {
        var rewritten = await FindAsync(Layer(t => t.Dir("lib").Whiteout("lib/libssl.so")), Layer(t => t.Dir("lib").File("lib/libssl.so", "back")));
        rewritten.Single().ShouldBe(new FileConflict("lib/libssl.so", FileConflictKind.Overwritten, FsChangeKind.Changed, 2, rewritten.Single().Detail));
        var deleted = await FindAsync(Layer(t => t.Dir("lib").File("lib/libssl.so", "mine")), Layer(t => t.Whiteout("lib")));
        deleted.Select(c => (c.Path, c.Kind, c.Layer)).ShouldBe([
            ("lib/libssl.so", FileConflictKind.Deleted, 2),
            ("lib/new.so", FileConflictKind.Deleted, 2),
        ]);
    }

    [Fact]
    public async Task A_path_the_new_base_removes_and_the_image_keeps_is_overwritten_and_one_both_remove_is_not_a_conflict()
    {
        (await FindAsync(Layer(t => t.Dir("lib").File("lib/old.so", "kept")))).Single()
            .ShouldBe(new FileConflict("lib/old.so", FileConflictKind.Overwritten, FsChangeKind.Deleted, 1, null));
        (await FindAsync(Layer(t => t.Dir("lib").Whiteout("lib/old.so")))).ShouldBeEmpty();
    }

    [Fact]
    public async Task A_file_replacing_a_directory_above_a_change_hides_it()
    {
        var conflicts = await FindAsync(Layer(t => t.Symlink("etc/ssl", "/opt/ssl")));
        conflicts.Single().ShouldBe(new FileConflict("etc/ssl/cert.pem", FileConflictKind.Overwritten, FsChangeKind.Changed, 1, conflicts.Single().Detail));
    }

    [Fact]
    public async Task The_report_counts_conflicts_and_writes_json()
    {
        var files = await FindAsync(
            Layer(t => t.Dir("lib").File("lib/libssl.so", "mine").Dir("opt").File("opt/tool", "mine")));
        var report = new RebaseReport("app:1", "base:v1", "--from", "base:v2", files,
            [new ConfigDifference("Env.PATH", "/bin", "/usr/bin:/bin", "/bin", Inherited: true, Applied: false),
             new ConfigDifference("User", "1", "2", "app", Inherited: false, Applied: false)]);
        report.ConflictCount.ShouldBe(2);
        var json = JsonNode.Parse(report.ToJson().ToJsonString())!;
        json["conflicts"]!.GetValue<int>().ShouldBe(2);
        json["oldBaseFoundBy"]!.GetValue<string>().ShouldBe("--from");
        var first = json["files"]![0]!;
        first["path"]!.GetValue<string>().ShouldBe("/lib/libssl.so");
        first["kind"]!.GetValue<string>().ShouldBe("overwritten");
        first["baseChange"]!.GetValue<string>().ShouldBe("changed");
        first["layer"]!.GetValue<int>().ShouldBe(1);
        json["files"]![1]!["kind"]!.GetValue<string>().ShouldBe("info");
        json["config"]![0]!["kind"]!.GetValue<string>().ShouldBe("config");
        json["config"]![0]!["newBase"]!.GetValue<string>().ShouldBe("/usr/bin:/bin");
        json["config"]![1]!["kind"]!.GetValue<string>().ShouldBe("info");
        report.ToLines().First().ShouldStartWith("overwritten /lib/libssl.so (new base: changed");
    }
}
