namespace LayerTool.Dockerfile.Instructions;

/// <summary>A COPY/ADD source given inline as a heredoc (<c>COPY &lt;&lt;EOF /dest</c>).</summary>
/// <param name="Name">The file name (the heredoc delimiter).</param>
/// <param name="Content">The body (tabs already stripped for <c>&lt;&lt;-</c>).</param>
/// <param name="Expand">Whether the body is subject to variable expansion (unquoted delimiter).</param>
public sealed record HeredocSource(string Name, string Content, bool Expand);

/// <summary>What COPY and ADD share.</summary>
public abstract record FileInstruction(
    IReadOnlyList<string> Sources,
    IReadOnlyList<HeredocSource> HeredocSources,
    string Destination,
    string? Chown,
    string? Chmod,
    bool Link,
    IReadOnlyList<string> Excludes) : Instruction
{
    /// <summary>True when written as a JSON array (<c>COPY ["a b", "/c"]</c>).</summary>
    public bool IsJson => Node.IsJson;
}

/// <summary><c>COPY [--from=...] [--chown=...] [--chmod=...] src... dest</c>.</summary>
public sealed record CopyInstruction(
    IReadOnlyList<string> Sources,
    IReadOnlyList<HeredocSource> HeredocSources,
    string Destination,
    string? From,
    string? Chown,
    string? Chmod,
    bool Link,
    bool Parents,
    IReadOnlyList<string> Excludes) : FileInstruction(Sources, HeredocSources, Destination, Chown, Chmod, Link, Excludes);

/// <summary><c>ADD [--chown=...] [--checksum=...] src... dest</c>; sources may be URLs or local archives.</summary>
public sealed record AddInstruction(
    IReadOnlyList<string> Sources,
    IReadOnlyList<HeredocSource> HeredocSources,
    string Destination,
    string? Chown,
    string? Chmod,
    bool Link,
    string? Checksum,
    bool? KeepGitDir,
    bool? Unpack,
    IReadOnlyList<string> Excludes) : FileInstruction(Sources, HeredocSources, Destination, Chown, Chmod, Link, Excludes);
