using System.Globalization;
using System.Text.RegularExpressions;
using LayerTool.Dockerfile.Syntax;

namespace LayerTool.Dockerfile.Instructions;

/// <summary>
/// Turns an <see cref="InstructionNode"/> into its typed <see cref="Instruction"/>, validating flags and
/// arguments with the errors Docker gives. One dispatch table: one entry per keyword.
/// </summary>
public static partial class InstructionParser
{
    private static readonly Dictionary<string, Func<Request, Instruction>> Dispatch = new(StringComparer.Ordinal)
    {
        [Keywords.From] = ParseFrom,
        [Keywords.Run] = ParseRun,
        [Keywords.Cmd] = r => new CmdInstruction(CommandOf(r.NoFlags()), r.Node.Heredocs) { Node = r.Node },
        [Keywords.Entrypoint] = r => new EntrypointInstruction(CommandOf(r.NoFlags())) { Node = r.Node },
        [Keywords.Shell] = ParseShell,
        [Keywords.Env] = r => new EnvInstruction(Pairs(r.NoFlags())) { Node = r.Node },
        [Keywords.Label] = r => new LabelInstruction(Pairs(r.NoFlags())) { Node = r.Node },
        [Keywords.Arg] = ParseArg,
        [Keywords.Expose] = r => new ExposeInstruction(AtLeastOne(r.NoFlags())) { Node = r.Node },
        [Keywords.Volume] = ParseVolume,
        [Keywords.User] = r => new UserInstruction(ExactlyOne(r.NoFlags())) { Node = r.Node },
        [Keywords.Workdir] = r => new WorkdirInstruction(ExactlyOne(r.NoFlags())) { Node = r.Node },
        [Keywords.StopSignal] = r => new StopSignalInstruction(ExactlyOne(r.NoFlags())) { Node = r.Node },
        [Keywords.Maintainer] = r => new MaintainerInstruction(ExactlyOne(r.NoFlags())) { Node = r.Node },
        [Keywords.Copy] = ParseCopy,
        [Keywords.Add] = ParseAdd,
        [Keywords.Healthcheck] = ParseHealthcheck,
        [Keywords.Onbuild] = ParseOnbuild,
        [Keywords.Tag] = ParseTag,
        [Keywords.Compress] = ParseCompress,
    };

    /// <summary>Keywords that may not be an ONBUILD trigger.</summary>
    public static IReadOnlySet<string> NotAllowedInOnbuild { get; } =
        new HashSet<string>(StringComparer.Ordinal) { Keywords.Onbuild, Keywords.From, Keywords.Maintainer, Keywords.Tag, Keywords.Compress };

    /// <summary>Parses one instruction; throws <see cref="DockerfileException"/> (located) when it is invalid.</summary>
    public static Instruction Parse(InstructionNode node, string fileName = "Dockerfile")
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(fileName);
        if (node.Error is not null)
            throw node.Error.ToException();
        if (!Dispatch.TryGetValue(node.Keyword, out var parse))
        {
            var hint = Suggest.Closest(node.Keyword, Keywords.All);
            throw new DockerfileException(fileName, node.Position.Line, node.Position.Column,
                $"unknown instruction: {node.KeywordAsWritten}" + (hint is null ? string.Empty : $" (did you mean {hint}?)"));
        }

        try
        {
            return parse(new Request(node, fileName));
        }
        catch (InstructionError e)
        {
            var at = e.Position ?? node.Position;
            throw new DockerfileException(fileName, at.Line, at.Column, e.Message);
        }
    }

    /// <summary>A validation failure inside one instruction, at an optional position.</summary>
    private sealed class InstructionError(string message, SourcePosition? position = null) : Exception(message)
    {
        public SourcePosition? Position { get; } = position;
    }

    private sealed class Request(InstructionNode node, string fileName)
    {
        public InstructionNode Node { get; } = node;

        public string FileName { get; } = fileName;

        public string Keyword => Node.Keyword;

        public IReadOnlyList<SyntaxWord> Args => Node.Arguments;

        public BuilderFlags Flags(params (string Name, FlagKind Kind)[] declared)
        {
            var flags = new BuilderFlags();
            foreach (var (name, kind) in declared)
                flags.Declare(name, kind);
            if (flags.Parse(Node.Flags) is { } failure)
                throw new InstructionError(failure.Message, failure.Word.Position);
            return flags;
        }

        public Request NoFlags()
        {
            Flags();
            return this;
        }
    }

    private static InstructionError AtLeastOneError(string keyword) => new($"{keyword} requires at least one argument");

    private static IReadOnlyList<string> AtLeastOne(Request r) =>
        r.Args.Count == 0 ? throw AtLeastOneError(r.Keyword) : [.. r.Args.Select(a => a.Text)];

    private static string ExactlyOne(Request r) =>
        r.Args.Count != 1 ? throw new InstructionError($"{r.Keyword} requires exactly one argument") : r.Args[0].Text;

    private static CommandLine CommandOf(Request r) => new([.. r.Args.Select(a => a.Text)], r.Node.IsJson);

    private static IReadOnlyList<KeyValue> Pairs(Request r)
    {
        if (r.Node.Pairs.Count == 0)
            throw AtLeastOneError(r.Keyword);
        foreach (var p in r.Node.Pairs)
        {
            if (p.Key.Length == 0)
                throw new InstructionError($"{r.Keyword} names can not be blank", p.Position);
        }

        return [.. r.Node.Pairs.Select(p => new KeyValue(p.Key, p.Value, p.HasEquals))];
    }

    [GeneratedRegex("^[a-z][a-z0-9-_.]*$")]
    private static partial Regex StageNameRegex();

    /// <summary>True when <paramref name="name"/> (lower-cased) is a valid build stage name.</summary>
    public static bool IsValidStageName(string name) => StageNameRegex().IsMatch((name ?? string.Empty).ToLowerInvariant());

    private static FromInstruction ParseFrom(Request r)
    {
        var flags = r.Flags(("platform", FlagKind.Value));
        string? stage = null;
        if (r.Args.Count == 3 && r.Args[1].Text.Equals("as", StringComparison.OrdinalIgnoreCase))
        {
            stage = r.Args[2].Text.ToLowerInvariant();
            if (!IsValidStageName(stage))
            {
                throw new InstructionError(
                    $"invalid name for build stage: {LineSplitter.Quote(r.Args[2].Text)}, name can't start with a number or contain symbols",
                    r.Args[2].Position);
            }
        }
        else if (r.Args.Count != 1)
        {
            throw new InstructionError("FROM requires either one or three arguments");
        }

        return new FromInstruction(r.Args[0].Text, stage, flags.String("platform")) { Node = r.Node };
    }

    private static RunInstruction ParseRun(Request r)
    {
        var flags = r.Flags(("mount", FlagKind.List), ("network", FlagKind.Value), ("security", FlagKind.Value));
        if (r.Args.Count == 0 || (!r.Node.IsJson && string.IsNullOrWhiteSpace(r.Args[0].Text)))
            throw AtLeastOneError(r.Keyword);
        var network = flags.String("network");
        if (network is not null && network is not ("default" or "none" or "host"))
            throw new InstructionError($"unsupported network mode: {network} (expected default, none or host)", r.Node.Flags[0].Position);
        return new RunInstruction(CommandOf(r), r.Node.Heredocs, flags.Strings("mount"), network, flags.String("security")) { Node = r.Node };
    }

    private static ShellInstruction ParseShell(Request r)
    {
        r.NoFlags();
        if (r.Args.Count == 0)
            throw AtLeastOneError(r.Keyword);
        if (!r.Node.IsJson)
            throw new InstructionError("SHELL requires the arguments to be in JSON form");
        return new ShellInstruction([.. r.Args.Select(a => a.Text)]) { Node = r.Node };
    }

    private static ArgInstruction ParseArg(Request r)
    {
        r.NoFlags();
        if (r.Args.Count == 0)
            throw AtLeastOneError(r.Keyword);
        var args = new List<ArgDeclaration>();
        foreach (var word in r.Args)
        {
            var eq = word.Text.IndexOf('=', StringComparison.Ordinal);
            if (eq == 0)
                throw new InstructionError("ARG names can not be blank", word.Position);
            args.Add(eq < 0 ? new ArgDeclaration(word.Text, null) : new ArgDeclaration(word.Text[..eq], word.Text[(eq + 1)..]));
        }

        return new ArgInstruction(args) { Node = r.Node };
    }

    private static VolumeInstruction ParseVolume(Request r)
    {
        var paths = AtLeastOne(r.NoFlags());
        for (var i = 0; i < paths.Count; i++)
        {
            if (paths[i].Trim().Length == 0)
                throw new InstructionError("VOLUME specified can not be an empty string", r.Args[i].Position);
        }

        return new VolumeInstruction([.. paths.Select(p => p.Trim())]) { Node = r.Node };
    }

    private static (IReadOnlyList<string> Sources, IReadOnlyList<HeredocSource> Heredocs, string Dest) SourcesAndDest(Request r)
    {
        if (r.Args.Count < 2)
        {
            throw new InstructionError(
                $"{r.Keyword} requires at least two arguments, but only one was provided. Destination could not be determined");
        }

        var dest = r.Args[^1];
        if (!r.Node.IsJson && HeredocScanner.TryParseOpener(dest.Text) is not null)
            throw new InstructionError($"{r.Keyword} cannot accept a heredoc as a destination", dest.Position);
        var sources = new List<string>();
        var heredocs = new List<HeredocSource>();
        foreach (var src in r.Args.Take(r.Args.Count - 1))
        {
            if (!r.Node.IsJson && HeredocScanner.TryParseOpener(src.Text) is { } opener)
            {
                var doc = r.Node.Heredocs.FirstOrDefault(h => h.Name == opener.Name);
                heredocs.Add(new HeredocSource(opener.Name, doc?.EffectiveContent ?? string.Empty, opener.Expand));
            }
            else
            {
                sources.Add(src.Text);
            }
        }

        return (sources, heredocs, dest.Text);
    }

    private static CopyInstruction ParseCopy(Request r)
    {
        var f = r.Flags(("from", FlagKind.Value), ("chown", FlagKind.Value), ("chmod", FlagKind.Value),
            ("link", FlagKind.Switch), ("parents", FlagKind.Switch), ("exclude", FlagKind.List));
        var (sources, heredocs, dest) = SourcesAndDest(r);
        return new CopyInstruction(sources, heredocs, dest, f.String("from"), f.String("chown"), f.String("chmod"),
            f.Bool("link"), f.Bool("parents"), f.Strings("exclude")) { Node = r.Node };
    }

    private static AddInstruction ParseAdd(Request r)
    {
        var f = r.Flags(("chown", FlagKind.Value), ("chmod", FlagKind.Value), ("link", FlagKind.Switch),
            ("keep-git-dir", FlagKind.Switch), ("checksum", FlagKind.Value), ("unpack", FlagKind.Switch), ("exclude", FlagKind.List));
        var (sources, heredocs, dest) = SourcesAndDest(r);
        return new AddInstruction(sources, heredocs, dest, f.String("chown"), f.String("chmod"), f.Bool("link"),
            f.String("checksum"), f.OptionalBool("keep-git-dir"), f.OptionalBool("unpack"), f.Strings("exclude")) { Node = r.Node };
    }

    private static HealthcheckInstruction ParseHealthcheck(Request r)
    {
        if (r.Args.Count == 0)
            throw AtLeastOneError(r.Keyword);
        var type = r.Args[0].Text.ToUpperInvariant();
        if (type == "NONE")
        {
            if (r.Args.Count != 1)
                throw new InstructionError("HEALTHCHECK NONE takes no arguments");
            return new HealthcheckInstruction(true, null, null, null, null, null, null) { Node = r.Node };
        }

        var f = r.Flags(("interval", FlagKind.Value), ("timeout", FlagKind.Value), ("start-period", FlagKind.Value),
            ("start-interval", FlagKind.Value), ("retries", FlagKind.Value));
        if (type != "CMD")
            throw new InstructionError($"Unknown type {LineSplitter.Quote(type)} in HEALTHCHECK (try CMD)", r.Args[0].Position);
        var cmd = r.Args.Skip(1).Select(a => a.Text).ToList();
        if (cmd.Count == 0)
            throw new InstructionError("Missing command after HEALTHCHECK CMD");
        int? retries = null;
        if (f.String("retries") is { } rs)
        {
            if (!int.TryParse(rs, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n))
                throw new InstructionError($"--retries must be an integer, not {LineSplitter.Quote(rs)}");
            if (n < 0)
                throw new InstructionError($"--retries cannot be negative ({n})");
            retries = n;
        }

        return new HealthcheckInstruction(false, new CommandLine(cmd, r.Node.IsJson), Interval(f, "interval"), Interval(f, "timeout"),
            Interval(f, "start-period"), Interval(f, "start-interval"), retries) { Node = r.Node };
    }

    private static TimeSpan? Interval(BuilderFlags f, string name)
    {
        if (f.String(name) is not { } s || s.Length == 0)
            return null;
        if (!GoDuration.TryParse(s, out var d))
            throw new InstructionError($"time: invalid duration {LineSplitter.Quote(s)}");
        if (d == TimeSpan.Zero)
            return null;
        if (d < TimeSpan.FromMilliseconds(1))
            throw new InstructionError($"Interval {LineSplitter.Quote(name)} cannot be less than 1ms");
        return d;
    }

    [GeneratedRegex(@"^\s*ONBUILD\s*", RegexOptions.IgnoreCase)]
    private static partial Regex OnbuildPrefix();

    private static OnbuildInstruction ParseOnbuild(Request r)
    {
        r.NoFlags();
        if (r.Node.Trigger is not { } trigger)
            throw AtLeastOneError(r.Keyword);
        switch (trigger.Keyword)
        {
            case Keywords.Onbuild:
                throw new InstructionError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed", trigger.Position);
            case var k when NotAllowedInOnbuild.Contains(k):
                throw new InstructionError($"{k} isn't allowed as an ONBUILD trigger", trigger.Position);
        }

        var parsed = Parse(trigger, r.FileName);
        var expression = OnbuildPrefix().Replace(r.Node.Original, string.Empty);
        foreach (var h in r.Node.Heredocs)
            expression += "\n" + h.Content + h.Name;
        return new OnbuildInstruction(expression, parsed) { Node = r.Node };
    }

    private static TagInstruction ParseTag(Request r)
    {
        var refs = AtLeastOne(r.NoFlags());
        for (var i = 0; i < refs.Count; i++)
        {
            if (refs[i].Contains('$', StringComparison.Ordinal))
                continue; // checked after expansion
            if (CheckTagReference(refs[i]) is { } why)
                throw new InstructionError(why, r.Args[i].Position);
        }

        return new TagInstruction(refs) { Node = r.Node };
    }

    /// <summary>Why <paramref name="reference"/> cannot be a TAG target, or null when it can.</summary>
    public static string? CheckTagReference(string reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        if (ImageReferenceSyntax.Validate(reference) is { } why)
            return $"TAG {LineSplitter.Quote(reference)}: {why}";
        return ImageReferenceSyntax.HasDigest(reference)
            ? $"TAG {LineSplitter.Quote(reference)}: a tag cannot contain a digest"
            : null;
    }

    private static CompressInstruction ParseCompress(Request r)
    {
        r.NoFlags();
        if (r.Args.Count > 1)
        {
            throw new InstructionError(
                $"COMPRESS takes at most one argument (a base image, stage name or TAG name), got {r.Args.Count}", r.Args[1].Position);
        }

        return new CompressInstruction(r.Args.Count == 0 ? null : r.Args[0].Text) { Node = r.Node };
    }
}
