using System.Globalization;
using System.Text;
using LayerTool.Dockerfile.Instructions;

namespace LayerTool.Build.Plans;

/// <summary>The distributed engines a plan can be exported to.</summary>
public enum PlanExportTarget
{
    /// <summary>A GitLab CI pipeline (<c>.gitlab-ci.yml</c>): a job an image, <c>needs:</c> for the edges.</summary>
    GitLab,

    /// <summary>An Argo Workflows <c>Workflow</c>: a <c>dag</c> template, a task an image.</summary>
    Argo,
}

/// <summary>How to export.</summary>
/// <param name="Target">GitLab CI or Argo.</param>
/// <param name="Root">The directory the pipeline runs in (the repository's root: GitLab's checkout, Argo's git
/// artifact); every context and Dockerfile must be below it.</param>
/// <param name="RunnerImage">The image the jobs run in: LayerTool and the docker CLI (docker/runner/Dockerfile);
/// null: <c>{registry}/layertool-runner:latest</c>.</param>
/// <param name="DindImage">The Docker-in-Docker image of the service or sidecar.</param>
/// <param name="PlanName">Names the workflow (Argo <c>generateName</c>) and appears in comments; null: the plan file's name.</param>
public sealed record PlanExportOptions(
    PlanExportTarget Target,
    string Root,
    string? RunnerImage = null,
    string DindImage = PlanExportOptions.DefaultDindImage,
    string? PlanName = null)
{
    public const string DefaultDindImage = "docker:28-dind";
}

/// <summary>
/// Turns a plan into a pipeline for an engine teams already run, one job (GitLab) or task (Argo) an image with
/// the plan's edges. Each job waits for its Docker-in-Docker engine, pulls its parents by digest and tags them
/// with the names its Dockerfile uses (so FROM and COPY --from resolve to exactly those digests), runs
/// <c>layertool build</c>, pushes the result with <c>layertool push</c> to its repository under a tag of the
/// pipeline run (and under the plan's tags for <c>output: registry|both</c>), and hands <c>repo@digest</c> to its
/// children: a dotenv report artifact (GitLab) or an output parameter (Argo). Pure: the text is returned.
/// The format is docs/cli/plan.md.
/// </summary>
public static class PlanExport
{
    /// <summary>Where a job writes the pushed <c>repo@digest</c> (Argo reads it as the output parameter).</summary>
    public const string ImageFile = "/tmp/layertool-plan-image";

    /// <summary>The pipeline text for <paramref name="graph"/>.</summary>
    /// <exception cref="PlanException">The plan has no registry, a path is outside <see cref="PlanExportOptions.Root"/>,
    /// or two images would get the same job, task or variable name.</exception>
    public static string Export(PlanGraph graph, PlanExportOptions options)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(options);
        var plan = graph.Plan;
        if (plan.Registry is null)
        {
            throw new PlanException($"{Path.GetFileName(plan.Path)}: the plan has no registry: an export hands images between jobs by "
                + "registry digests; add `registry: HOST[:PORT]/PATH` at the top of the plan");
        }

        var context = new ExportContext(graph, options with { RunnerImage = options.RunnerImage ?? $"{plan.Registry}/layertool-runner:latest" });
        return options.Target == PlanExportTarget.GitLab ? GitLab(context) : Argo(context);
    }

    /// <summary>The directory a plan file's exports run from by default: the git work tree holding it, else its own directory.</summary>
    public static string DefaultRoot(string planPath)
    {
        ArgumentNullException.ThrowIfNull(planPath);
        var start = Path.GetDirectoryName(Path.GetFullPath(planPath))!;
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            if (Directory.Exists(Path.Combine(dir.FullName, ".git")) || File.Exists(Path.Combine(dir.FullName, ".git")))
                return dir.FullName;
        }

        return start;
    }

    /// <summary>The dotenv variable that carries <paramref name="image"/>'s <c>repo@digest</c> to its children (GitLab).</summary>
    public static string ImageVariable(string image) => "PLAN_IMAGE_" + Sanitize(image, '_').ToUpperInvariant();

    /// <summary>The Argo task and template suffix for <paramref name="image"/>: lower-case letters, digits and <c>-</c>.</summary>
    public static string ArgoName(string image) => Sanitize(image, '-').ToLowerInvariant();

    /// <summary>The GitLab job of <paramref name="image"/>.</summary>
    public static string GitLabJob(string image) => "build:" + image;

    private static string GitLab(ExportContext x)
    {
        var graph = x.Graph;
        var plan = graph.Plan;
        Unique(plan, ImageVariable, "GitLab variable");
        var root = new List<KeyValuePair<string, YamlValue>>
        {
            new("stages", YamlList.Of(graph.Levels.Select((_, i) => (YamlValue)$"plan-level-{i.ToString(CultureInfo.InvariantCulture)}"))),
            new("variables", YamlMap.Of(
                // Docker-in-Docker without TLS, one of the two set-ups GitLab documents: the engine listens on the
                // job's own network (the service), see docs/cli/plan.md.
                ("DOCKER_HOST", "tcp://docker:2375"),
                ("DOCKER_TLS_CERTDIR", ""))),
            new(".layertool-plan", YamlMap.Of(
                ("image", x.Options.RunnerImage!),
                ("services", YamlList.Of(YamlMap.Of(("name", x.Options.DindImage), ("alias", "docker")))),
                ("before_script", YamlList.Of(
                    "timeout 120 sh -c 'until docker info >/dev/null 2>&1; do sleep 1; done'",
                    "if [ -n \"${DOCKER_AUTH_CONFIG:-}\" ]; then mkdir -p \"$HOME/.docker\" && printf '%s' \"$DOCKER_AUTH_CONFIG\" > \"$HOME/.docker/config.json\"; fi")))),
        };
        foreach (var image in graph.Order)
        {
            var parents = graph.Parents(image.Name);
            var script = new List<YamlValue>();
            foreach (var parent in parents)
                script.AddRange(x.PullParent(image, parent, $"${ImageVariable(parent.Name)}").Select(l => (YamlValue)l));
            script.AddRange(x.BuildAndPush(image, "plan-$CI_PIPELINE_ID", $"plan-{Sanitize(image.Name, '-')}.env", ImageVariable(image.Name)).Select(l => (YamlValue)l));
            root.Add(new(GitLabJob(image.Name), YamlMap.Of(
                ("extends", ".layertool-plan"),
                ("stage", $"plan-level-{graph.Level(image.Name).ToString(CultureInfo.InvariantCulture)}"),
                ("needs", YamlList.Of(parents.Select(p => (YamlValue)YamlMap.Of(("job", GitLabJob(p.Name)), ("artifacts", new YamlBool(true)))))),
                ("script", new YamlList(script)),
                ("artifacts", YamlMap.Of(("reports", YamlMap.Of(("dotenv", $"plan-{Sanitize(image.Name, '-')}.env"))))))));
        }

        return YamlText.Write(new YamlMap(root), x.Header("gitlab"));
    }

    private static string Argo(ExportContext x)
    {
        var graph = x.Graph;
        var plan = graph.Plan;
        Unique(plan, ArgoName, "Argo task name");
        var tasks = new List<YamlValue>();
        var templates = new List<YamlValue>();
        foreach (var image in graph.Order)
        {
            var name = ArgoName(image.Name);
            var parents = graph.Parents(image.Name);
            tasks.Add(YamlMap.Of(
                ("name", name),
                ("template", "build-" + name),
                ("dependencies", parents.Count == 0 ? null : YamlList.Of(parents.Select(p => (YamlValue)ArgoName(p.Name)))),
                ("arguments", parents.Count == 0 ? null : YamlMap.Of(("parameters", YamlList.Of(parents.Select(p => (YamlValue)YamlMap.Of(
                    ("name", "parent-" + ArgoName(p.Name)),
                    ("value", $"{{{{tasks.{ArgoName(p.Name)}.outputs.parameters.image}}}}")))))))));
            var script = new List<string> { "set -eu", "timeout 120 sh -c 'until docker info >/dev/null 2>&1; do sleep 1; done'" };
            foreach (var parent in parents)
                script.AddRange(x.PullParent(image, parent, $"{{{{inputs.parameters.parent-{ArgoName(parent.Name)}}}}}"));
            script.AddRange(x.BuildAndPush(image, "plan-{{workflow.name}}", null, null));
            templates.Add(YamlMap.Of(
                ("name", "build-" + name),
                ("inputs", YamlMap.Of(
                    ("parameters", parents.Count == 0 ? null : YamlList.Of(parents.Select(p => (YamlValue)YamlMap.Of(("name", "parent-" + ArgoName(p.Name)))))),
                    ("artifacts", YamlList.Of(YamlMap.Of(
                        ("name", "source"),
                        ("path", "/src"),
                        ("git", YamlMap.Of(("repo", "{{workflow.parameters.repo}}"), ("revision", "{{workflow.parameters.revision}}")))))))),
                ("outputs", YamlMap.Of(("parameters", YamlList.Of(YamlMap.Of(("name", "image"), ("valueFrom", YamlMap.Of(("path", ImageFile)))))))),
                ("container", YamlMap.Of(
                    ("name", "main"),
                    ("image", x.Options.RunnerImage!),
                    ("command", YamlList.Of("sh", "-c")),
                    ("args", YamlList.Of(new YamlString(string.Join('\n', script) + "\n", Block: true))),
                    ("workingDir", "/src"),
                    ("env", YamlList.Of(
                        YamlMap.Of(("name", "DOCKER_HOST"), ("value", "tcp://127.0.0.1:2375")),
                        YamlMap.Of(("name", "DOCKER_CONFIG"), ("value", "/docker-config")))),
                    ("volumeMounts", YamlList.Of(YamlMap.Of(("name", "docker-config"), ("mountPath", "/docker-config"), ("readOnly", new YamlBool(true))))))),
                ("sidecars", YamlList.Of(YamlMap.Of(
                    ("name", "dind"),
                    ("image", x.Options.DindImage),
                    ("command", YamlList.Of("dockerd-entrypoint.sh")),
                    // The engine listens without TLS on the pod's own network (the sidecar pattern of Argo's examples).
                    ("env", YamlList.Of(YamlMap.Of(("name", "DOCKER_TLS_CERTDIR"), ("value", "")))),
                    ("securityContext", YamlMap.Of(("privileged", new YamlBool(true)))))))));
        }

        var workflow = YamlMap.Of(
            ("apiVersion", "argoproj.io/v1alpha1"),
            ("kind", "Workflow"),
            ("metadata", YamlMap.Of(("generateName", $"plan-{ArgoName(x.PlanName)}-"))),
            ("spec", YamlMap.Of(
                ("entrypoint", "plan"),
                ("arguments", YamlMap.Of(("parameters", YamlList.Of(
                    YamlMap.Of(("name", "repo"), ("value", "")),
                    YamlMap.Of(("name", "revision"), ("value", "HEAD")))))),
                ("volumes", YamlList.Of(YamlMap.Of(
                    ("name", "docker-config"),
                    ("secret", YamlMap.Of(("secretName", "layertool-registry"), ("optional", new YamlBool(true))))))),
                ("templates", new YamlList([YamlMap.Of(("name", "plan"), ("dag", YamlMap.Of(("tasks", new YamlList(tasks))))), .. templates])))));
        return YamlText.Write(workflow, x.Header("argo"));
    }

    private static void Unique(PlanFile plan, Func<string, string> name, string what)
    {
        var seen = new Dictionary<string, PlanImage>(StringComparer.Ordinal);
        foreach (var image in plan.Images)
        {
            if (!seen.TryAdd(name(image.Name), image))
                throw new PlanException(image.Location, $"image {image.Name}: its {what} {name(image.Name)} is also image {seen[name(image.Name)].Name}'s; rename one");
        }
    }

    private static string Sanitize(string name, char replacement)
    {
        var text = new StringBuilder();
        foreach (var c in name)
            text.Append(char.IsAsciiLetterOrDigit(c) ? c : replacement);
        return text.ToString();
    }

    /// <summary>What both exports share: the graph, the options, paths below the root, the job's commands.</summary>
    private sealed class ExportContext(PlanGraph graph, PlanExportOptions options)
    {
        public PlanGraph Graph { get; } = graph;

        public PlanExportOptions Options { get; } = options;

        public string Root { get; } = Path.GetFullPath(options.Root);

        public string PlanName { get; } = options.PlanName ?? Path.GetFileNameWithoutExtension(graph.Plan.Path);

        public IEnumerable<string> Header(string target) =>
        [
            $"Generated by `layertool plan export {Path.GetRelativePath(Root, Graph.Plan.Path).Replace('\\', '/')} --to {target}`: one {(target == "gitlab" ? "job" : "task")} an image, in the plan's dependency order.",
            $"Each builds in a privileged Docker-in-Docker {(target == "gitlab" ? "service" : "sidecar")} ({Options.DindImage}) and pushes by digest to {Graph.Plan.Registry};",
            "children pull their parents by digest. Privileged mode gives the job root on its node: see docs/cli/plan.md.",
        ];

        /// <summary>Pulls the parent by its <c>repo@digest</c> and tags it with every name the child's Dockerfile uses for it.
        /// A parent the Dockerfile does not name (a depends_on edge) is only waited for.</summary>
        public IEnumerable<string> PullParent(PlanImage child, PlanImage parent, string reference)
        {
            var names = Graph.References(child.Name).Where(r => r.Parent == parent.Name).Select(r => ImageReferenceSyntax.Normalize(r.Reference))
                .Distinct(StringComparer.Ordinal).ToList();
            if (names.Count == 0) yield break;
            yield return $"docker pull \"{reference}\"";
            foreach (var name in names)
                yield return $"docker tag \"{reference}\" {Quote(name)}";
        }

        /// <summary>Builds, pushes under the run's tag (and the plan's tags), and writes <c>repo@digest</c> where the children find it.</summary>
        public IEnumerable<string> BuildAndPush(PlanImage image, string runTag, string? dotenv, string? variable)
        {
            var repository = image.EffectiveRepository(Graph.Plan.Registry)!;
            var build = new StringBuilder("layertool build");
            build.Append(" -f ").Append(Quote(Relative(image.Dockerfile, image)));
            if (image.Target is { } target) build.Append(" --target ").Append(Quote(target));
            foreach (var (name, value) in image.BuildArgs.OrderBy(a => a.Key, StringComparer.Ordinal))
                build.Append(" --build-arg ").Append(Quote($"{name}={value}"));
            build.Append(" -t ").Append(Quote(image.Name));
            foreach (var tag in image.Tags) build.Append(" -t ").Append(Quote(tag));
            build.Append(' ').Append(Quote(Relative(image.Context, image)));
            yield return build.ToString();
            yield return $"digest=$(layertool push {Quote(image.Name)} \"{repository}:{runTag}\")";
            if ((image.Outputs & PlanOutputs.Registry) != 0)
            {
                foreach (var tag in image.Tags.Select(TagOf).Distinct(StringComparer.Ordinal))
                    yield return $"layertool push {Quote(image.Name)} {Quote($"{repository}:{tag}")} >/dev/null";
            }

            yield return $"echo \"{repository}@$digest\" > {ImageFile}";
            if (dotenv is not null)
                yield return $"echo \"{variable}={repository}@$digest\" > {dotenv}";
        }

        /// <summary>The path relative to the root, with <c>/</c>.</summary>
        public string Relative(string path, PlanImage image)
        {
            var relative = Path.GetRelativePath(Root, path).Replace('\\', '/');
            if (relative == ".." || relative.StartsWith("../", StringComparison.Ordinal) || Path.IsPathRooted(relative))
                throw new PlanException(image.Location, $"image {image.Name}: {path} is outside the export's root {Root} (give --root)");
            return relative;
        }

        /// <summary>The tag part of a reference (<c>latest</c> when it has none).</summary>
        private static string TagOf(string reference)
        {
            var colon = reference.IndexOf(':', reference.LastIndexOf('/') + 1);
            return colon < 0 ? "latest" : reference[(colon + 1)..];
        }

        /// <summary>A word for sh: as it is when it has no special characters, else single-quoted.</summary>
        private static string Quote(string word) =>
            word.Length > 0 && word.All(c => char.IsAsciiLetterOrDigit(c) || "-_./:=@+,".Contains(c, StringComparison.Ordinal))
                ? word
                : "'" + word.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
    }
}
