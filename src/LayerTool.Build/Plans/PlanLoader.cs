using LayerTool.Dockerfile.Instructions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace LayerTool.Build.Plans;

/// <summary>
/// Reads a plan file (YAML; the format is docs/cli/plan.md, its JSON Schema docs/plan.schema.json) into a
/// <see cref="PlanFile"/>. Refuses, with <c>file:line: message</c>: YAML syntax errors, unknown keys at every
/// level, values of the wrong type, duplicate keys and image names, names and tags that are not image
/// references, contexts and Dockerfiles that do not exist, <c>depends_on</c> naming an unknown image or making a
/// cycle, and a plan without images. Edges inferred from the Dockerfiles are <see cref="PlanGraph"/>'s business.
/// Paths are relative to the plan file's directory.
/// </summary>
public static class PlanLoader
{
    /// <summary>The keys a plan file may have at the top.</summary>
    public static IReadOnlyList<string> TopLevelKeys { get; } = ["registry", "images"];

    /// <summary>The keys an image may have (<c>name</c> only in the list form).</summary>
    public static IReadOnlyList<string> ImageKeys { get; } =
        ["name", "context", "dockerfile", "args", "target", "tags", "output", "repository", "depends_on"];

    /// <summary>Reads and checks the plan file at <paramref name="path"/> (as the user gave it: messages name it so).</summary>
    /// <param name="path">The plan file.</param>
    /// <param name="workingDirectory">What a relative <paramref name="path"/> is relative to; null: the process's current directory.</param>
    /// <exception cref="PlanException">The plan is invalid.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static PlanFile Load(string path, string? workingDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        var full = workingDirectory is null ? Path.GetFullPath(path) : Path.GetFullPath(path, workingDirectory);
        if (!File.Exists(full))
            throw new PlanException($"{path}: no such plan file");
        using var reader = new StreamReader(full);
        return Read(reader, path, full);
    }

    /// <summary>Reads a plan from <paramref name="reader"/>.</summary>
    /// <param name="reader">The YAML text.</param>
    /// <param name="displayName">The file's name for messages.</param>
    /// <param name="fullPath">The file's full path: <see cref="PlanFile.Path"/>; relative paths in the plan are relative to its directory.</param>
    public static PlanFile Read(TextReader reader, string displayName, string fullPath)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(displayName);
        ArgumentNullException.ThrowIfNull(fullPath);
        var stream = new YamlStream();
        try
        {
            stream.Load(reader);
        }
        catch (YamlException e)
        {
            throw new PlanException(new PlanLocation(displayName, (int)e.Start.Line, (int)e.Start.Column), YamlMessage(e), e);
        }

        fullPath = Path.GetFullPath(fullPath);
        return new Reader(displayName, fullPath, Path.GetDirectoryName(fullPath)!).Read(stream);
    }

    /// <summary>YamlDotNet's message without its own <c>(Line: .., Col: ..)</c> prefix.</summary>
    private static string YamlMessage(YamlException e)
    {
        var message = (e.InnerException as YamlException)?.Message ?? e.Message;
        var close = message.StartsWith("(Line:", StringComparison.Ordinal) ? message.IndexOf("): ", StringComparison.Ordinal) : -1;
        return "YAML: " + (close >= 0 ? message[(close + 3)..] : message);
    }

    /// <summary>One read of one file: its name for messages and the directory paths are relative to.</summary>
    private sealed class Reader(string file, string fullPath, string baseDirectory)
    {
        public PlanFile Read(YamlStream stream)
        {
            if (stream.Documents.Count > 1)
                throw Error(stream.Documents[1].RootNode, "a plan file holds one YAML document");
            if (stream.Documents.Count == 0 || IsNull(stream.Documents[0].RootNode))
                throw new PlanException(new PlanLocation(file, 1, 1), "the plan has no images");
            var root = Mapping(stream.Documents[0].RootNode, "the plan");
            var keys = Keys(root, TopLevelKeys, "the plan");
            var registry = keys.TryGetValue("registry", out var r) ? Registry(r) : null;
            if (!keys.TryGetValue("images", out var imagesNode) || IsNull(imagesNode))
                throw Error(root, "the plan has no images (images: is missing)");
            var images = Images(imagesNode, registry);
            CheckDependsOn(images);
            return new PlanFile(fullPath, registry, images);
        }

        private List<PlanImage> Images(YamlNode node, string? registry)
        {
            var images = new List<PlanImage>();
            var seen = new Dictionary<string, PlanImage>(StringComparer.Ordinal);
            void Add(YamlNode nameNode, YamlNode value, bool listForm)
            {
                var image = Image(nameNode, value, listForm, registry);
                if (seen.TryGetValue(image.Name, out var first))
                    throw Error(nameNode, $"duplicate image name '{image.Name}' (first at line {first.Location.Line})");
                seen.Add(image.Name, image);
                images.Add(image);
            }

            switch (node)
            {
                case YamlMappingNode map:
                    foreach (var (key, value) in map.Children)
                        Add(key, value, listForm: false);
                    break;
                case YamlSequenceNode list:
                    foreach (var item in list.Children)
                    {
                        var itemMap = Mapping(item, "an image");
                        var name = itemMap.Children.FirstOrDefault(c => Text(c.Key) == "name");
                        if (name.Key is null)
                            throw Error(item, "an image in the list form needs a name:");
                        Add(name.Value, itemMap, listForm: true);
                    }

                    break;
                default:
                    throw Error(node, $"images: expected a map of name: image, or a list of images, not {Kind(node)}");
            }

            if (images.Count == 0)
                throw Error(node, "the plan has no images");
            CheckNamesAndTags(images);
            return images;
        }

        private PlanImage Image(YamlNode nameNode, YamlNode value, bool listForm, string? registry)
        {
            var name = Scalar(nameNode, "an image name");
            if (ImageName(name) is { } why)
                throw Error(nameNode, $"image name '{name}': {why}");
            var what = $"image {name}";
            var map = Mapping(value, what);
            var keys = Keys(map, listForm ? ImageKeys : ImageKeys.Skip(1), what);
            if (!keys.TryGetValue("context", out var contextNode))
                throw Error(map.Children.Count > 0 ? map : nameNode, $"{what}: context: is required");
            var contextText = NonEmpty(contextNode, $"{what}: context");
            var context = Path.GetFullPath(Path.Combine(baseDirectory, contextText));
            if (!Directory.Exists(context))
                throw Error(contextNode, $"{what}: the context {contextText} is not a directory ({context})");
            string dockerfile;
            if (keys.TryGetValue("dockerfile", out var dockerfileNode))
            {
                var text = NonEmpty(dockerfileNode, $"{what}: dockerfile");
                dockerfile = Path.GetFullPath(Path.Combine(baseDirectory, text));
                if (!File.Exists(dockerfile))
                    throw Error(dockerfileNode, $"{what}: the Dockerfile {text} does not exist ({dockerfile})");
            }
            else
            {
                dockerfile = Path.Combine(context, "Dockerfile");
                if (!File.Exists(dockerfile))
                    throw Error(contextNode, $"{what}: the context has no Dockerfile ({dockerfile}); name one with dockerfile:");
            }

            var args = keys.TryGetValue("args", out var argsNode) ? Args(argsNode, what) : new Dictionary<string, string>(StringComparer.Ordinal);
            var target = keys.TryGetValue("target", out var targetNode) ? NonEmpty(targetNode, $"{what}: target") : null;
            var tags = keys.TryGetValue("tags", out var tagsNode) ? Tags(tagsNode, what) : [];
            var outputs = keys.TryGetValue("output", out var outputNode) ? Output(outputNode, what) : PlanOutputs.Engine;
            string? repository = null;
            if (keys.TryGetValue("repository", out var repositoryNode))
            {
                repository = Scalar(repositoryNode, $"{what}: repository");
                if (RepositoryError(repository) is { } bad)
                    throw Error(repositoryNode, $"{what}: repository '{repository}': {bad}");
            }

            if ((outputs & PlanOutputs.Registry) != 0 && repository is null && registry is null)
                throw Error(outputNode!, $"{what}: output {OutputName(outputs)} needs a repository: (or the plan's registry:)");
            var dependsOn = keys.TryGetValue("depends_on", out var dependsNode) ? DependsOn(dependsNode, what) : [];
            return new PlanImage(name, context, dockerfile, args, target, tags, outputs, repository, dependsOn, At(nameNode)) { DependsOnLocations = [.. dependsOn.Select((_, i) => At(((YamlSequenceNode)dependsNode!).Children[i]))] };
        }

        private string Registry(YamlNode node)
        {
            var registry = Scalar(node, "registry");
            var trimmed = registry.TrimEnd('/');
            if (trimmed.Length == 0 || RepositoryError(trimmed + "/x") is not null)
                throw Error(node, $"registry '{registry}': expected a repository prefix such as registry.example:5000/team");
            return trimmed;
        }

        private Dictionary<string, string> Args(YamlNode node, string what)
        {
            if (node is not YamlMappingNode map)
                throw Error(node, $"{what}: args: expected a map of NAME: value, not {Kind(node)}");
            var args = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (key, value) in map.Children)
            {
                var name = Scalar(key, $"{what}: an arg name");
                if (name.Length == 0 || name.Contains('=', StringComparison.Ordinal))
                    throw Error(key, $"{what}: args: '{name}' is not an arg name");
                if (IsNull(value))
                    throw Error(value, $"{what}: args: {name} has no value (write \"\" for an empty one)");
                if (!args.TryAdd(name, Scalar(value, $"{what}: args: {name}")))
                    throw Error(key, $"{what}: args: duplicate arg {name}");
            }

            return args;
        }

        private List<string> Tags(YamlNode node, string what)
        {
            var tags = new List<string>();
            foreach (var item in Sequence(node, $"{what}: tags"))
            {
                var tag = Scalar(item, $"{what}: a tag");
                if (ImageReferenceSyntax.Validate(tag) is { } why)
                    throw Error(item, $"{what}: tag '{tag}': {why}");
                if (ImageReferenceSyntax.HasDigest(tag))
                    throw Error(item, $"{what}: tag '{tag}': a tag cannot carry a digest");
                if (tags.Contains(tag, StringComparer.Ordinal))
                    throw Error(item, $"{what}: duplicate tag '{tag}'");
                tags.Add(tag);
            }

            return tags;
        }

        private PlanOutputs Output(YamlNode node, string what) => Scalar(node, $"{what}: output") switch
        {
            "engine" => PlanOutputs.Engine,
            "registry" => PlanOutputs.Registry,
            "both" => PlanOutputs.Engine | PlanOutputs.Registry,
            var other => throw Error(node, $"{what}: output '{other}': expected engine, registry or both"),
        };

        private List<string> DependsOn(YamlNode node, string what)
        {
            var names = new List<string>();
            foreach (var item in Sequence(node, $"{what}: depends_on"))
            {
                var name = Scalar(item, $"{what}: depends_on");
                if (names.Contains(name, StringComparer.Ordinal))
                    throw Error(item, $"{what}: depends_on lists '{name}' twice");
                names.Add(name);
            }

            return names;
        }

        /// <summary>depends_on names existing images and makes no cycle (the inferred edges come later, in PlanGraph).</summary>
        private static void CheckDependsOn(List<PlanImage> images)
        {
            var byName = images.ToDictionary(i => i.Name, StringComparer.Ordinal);
            foreach (var image in images)
            {
                for (var i = 0; i < image.DependsOn.Count; i++)
                {
                    if (!byName.ContainsKey(image.DependsOn[i]))
                        throw new PlanException(image.DependsOnLocations[i], $"image {image.Name}: depends_on names '{image.DependsOn[i]}', which is not an image of this plan");
                }
            }

            var edges = images.SelectMany(i => i.DependsOn.Select((d, k) => new PlanEdge(d, i.Name, PlanEdgeKind.DependsOn, d, i.DependsOnLocations[k])));
            if (PlanGraph.FindCycle(images.Select(i => i.Name), edges) is { } cycle)
                throw new PlanException(cycle.Closing.Location, $"dependency cycle: {string.Join(" -> ", cycle.Names)} (depends_on)");
        }

        /// <summary>No name or tag of one image may name another one: FROM would be ambiguous.</summary>
        private static void CheckNamesAndTags(List<PlanImage> images)
        {
            var owners = new Dictionary<string, PlanImage>(StringComparer.Ordinal);
            foreach (var image in images)
            {
                foreach (var reference in image.Tags.Prepend(image.Name).Select(ImageReferenceSyntax.Normalize).Distinct(StringComparer.Ordinal))
                {
                    if (owners.TryGetValue(reference, out var other) && other != image)
                        throw new PlanException(image.Location, $"image {image.Name}: '{reference}' also names image {other.Name}");
                    owners[reference] = image;
                }
            }
        }

        private Dictionary<string, YamlNode> Keys(YamlMappingNode map, IEnumerable<string> allowed, string what)
        {
            var allowedSet = allowed.ToList();
            var keys = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
            foreach (var (keyNode, value) in map.Children)
            {
                var key = Scalar(keyNode, $"{what}: a key");
                if (!allowedSet.Contains(key, StringComparer.Ordinal))
                {
                    var hint = key == "name" ? " (in the map form the name is the key)" : $" (expected one of: {string.Join(", ", allowedSet)})";
                    throw Error(keyNode, $"{what}: unknown key '{key}'{hint}");
                }

                if (!keys.TryAdd(key, value))
                    throw Error(keyNode, $"{what}: duplicate key '{key}'");
            }

            return keys;
        }

        private YamlMappingNode Mapping(YamlNode node, string what) =>
            node as YamlMappingNode ?? throw Error(node, $"{what}: expected a map, not {Kind(node)}");

        private IList<YamlNode> Sequence(YamlNode node, string what) =>
            node is YamlSequenceNode s ? s.Children : throw Error(node, $"{what}: expected a list, not {Kind(node)}");

        private string Scalar(YamlNode node, string what)
        {
            if (node is not YamlScalarNode scalar || IsNull(node))
                throw Error(node, $"{what}: expected a string, not {Kind(node)}");
            return scalar.Value ?? string.Empty;
        }

        private string NonEmpty(YamlNode node, string what)
        {
            var value = Scalar(node, what);
            return value.Length > 0 ? value : throw Error(node, $"{what}: must not be empty");
        }

        private static string? Text(YamlNode node) => (node as YamlScalarNode)?.Value;

        /// <summary>A plain <c>~</c>, <c>null</c> or nothing: YAML's null.</summary>
        private static bool IsNull(YamlNode node) =>
            node is YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any, Value: null or "" or "~" or "null" or "Null" or "NULL" } s
            && s.Tag.IsEmpty;

        private static string Kind(YamlNode node) => node switch
        {
            YamlMappingNode => "a map",
            YamlSequenceNode => "a list",
            _ when IsNull(node) => "nothing (null)",
            YamlScalarNode s => $"'{s.Value}'",
            _ => "that",
        };

        private PlanLocation At(YamlNode node) => new(file, (int)node.Start.Line, (int)node.Start.Column);

        private PlanException Error(YamlNode node, string detail) => new(At(node), detail);
    }

    /// <summary>Why <paramref name="name"/> cannot be an image's name, or null: a repository path (<c>base</c>, <c>team/base</c>), no tag, no digest, no registry port.</summary>
    public static string? ImageName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.Length == 0) return "empty";
        if (name.Contains(':', StringComparison.Ordinal) || name.Contains('@', StringComparison.Ordinal))
            return "a name is a repository path without a tag or digest (tags go under tags:)";
        return ImageReferenceSyntax.Validate(name);
    }

    /// <summary>Why <paramref name="repository"/> is not a repository (<c>host[:port]/path</c>, no tag, no digest), or null.</summary>
    public static string? RepositoryError(string repository)
    {
        ArgumentNullException.ThrowIfNull(repository);
        if (ImageReferenceSyntax.Validate(repository) is { } why) return why;
        if (ImageReferenceSyntax.HasDigest(repository)) return "a repository has no digest";
        return repository.IndexOf(':', repository.LastIndexOf('/') + 1) >= 0 ? "a repository has no tag" : null;
    }

    /// <summary>The word the plan file uses for <paramref name="outputs"/>.</summary>
    public static string OutputName(PlanOutputs outputs) => outputs switch
    {
        PlanOutputs.Engine => "engine",
        PlanOutputs.Registry => "registry",
        _ => "both",
    };
}
