using LayerTool.Dockerfile.Syntax;

namespace LayerTool.Dockerfile.Instructions;

/// <summary>
/// Parses the ONBUILD triggers stored in a base image's config (<c>"RUN echo hi"</c>, heredoc bodies
/// included) so a build can fire them right after its FROM, with the same rules as in a Dockerfile.
/// </summary>
public static class OnbuildTriggers
{
    /// <summary>Parses one stored trigger; <paramref name="origin"/> names it in errors (e.g. the base image).</summary>
    /// <exception cref="DockerfileException">The trigger is not a valid instruction or not allowed as a trigger.</exception>
    public static Instruction Parse(string expression, string origin)
    {
        ArgumentNullException.ThrowIfNull(expression);
        ArgumentNullException.ThrowIfNull(origin);
        var syntax = DockerfileParser.Parse(expression, origin);
        if (syntax.Instructions.Count != 1)
            throw new DockerfileException(origin, 1, 1, "onbuild trigger should be a single expression");
        var node = syntax.Instructions[0];
        if (InstructionParser.NotAllowedInOnbuild.Contains(node.Keyword))
        {
            throw new DockerfileException(origin, node.Position.Line, node.Position.Column,
                node.Keyword == Keywords.Onbuild
                    ? "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
                    : $"{node.Keyword} isn't allowed as an ONBUILD trigger");
        }

        return InstructionParser.Parse(node, origin);
    }

    /// <summary>Parses every trigger of an image, in order.</summary>
    public static IReadOnlyList<Instruction> ParseAll(IEnumerable<string> expressions, string origin)
    {
        ArgumentNullException.ThrowIfNull(expressions);
        return [.. expressions.Select(e => Parse(e, origin))];
    }
}
