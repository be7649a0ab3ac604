namespace LayerTool.Dockerfile.Syntax;

/// <summary>
/// The result of <see cref="DockerfileParser"/>: the instructions in order, the parser directives, and every
/// diagnostic found while reading (warnings, and in lenient mode the errors).
/// </summary>
public sealed record DockerfileSyntax(
    string FileName,
    char EscapeToken,
    IReadOnlyList<ParserDirective> Directives,
    IReadOnlyList<InstructionNode> Instructions,
    IReadOnlyList<Diagnostic> Diagnostics)
{
    /// <summary>The <c># syntax=</c> directive's value, if any (recorded, not acted upon).</summary>
    public string? SyntaxDirective => Directives.FirstOrDefault(d => d.Name == "syntax")?.Value;

    public IEnumerable<Diagnostic> Warnings => Diagnostics.Where(d => !d.IsError);

    public IEnumerable<Diagnostic> Errors => Diagnostics.Where(d => d.IsError);
}
