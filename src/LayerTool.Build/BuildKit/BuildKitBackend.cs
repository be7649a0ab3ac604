using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using LayerTool.Build;
using LayerTool.Build.Frontend;
using LayerTool.Build.Planning;
using LayerTool.Build.Progress;
using LayerTool.Docker;
using LayerTool.Build.BuildKit;
using LayerTool.Docker.BuildKit;
using LayerTool.Docker.Dind;
using LayerTool.Dockerfile.Model;

namespace LayerTool.Build.BuildKit;

/// <summary>What a <see cref="BuildKitBackend"/> builds from.</summary>
/// <param name="ContextDirectory">The build context directory.</param>
/// <param name="DockerfilePath">The user's Dockerfile (null: <c>Dockerfile</c> in the context).</param>
/// <param name="AlwaysPull">Pull every FROM image before each build (<c>--pull</c>), through <c>/images/create</c>.</param>
/// <param name="PlannedDockerfiles">The Dockerfile texts of every build the plan will run (null: not known). Those that must
/// travel in the context all go into one upload that every such build sends: the engine copies an uploaded context into
/// its cache once per distinct upload (about 80 ms, even without cache), so a plan of three builds pays that once, not three
/// times.</param>
public sealed record BuildKitBackendOptions(string ContextDirectory, string? DockerfilePath = null, bool AlwaysPull = false,
    IReadOnlyList<string>? PlannedDockerfiles = null);

/// <summary>
/// Standard builds on the engine's embedded BuildKit through the Engine API: <c>POST /build?version=2</c> with
/// the context as a plain tar body and no session. The context (after <c>.dockerignore</c>) is spooled once and
/// reused for every build. The FROM images are pulled first through <c>/images/create</c> (the engine's
/// credentials) and <c>pull=1</c> is never sent: without a session BuildKit cannot authenticate to a registry.
/// Progress is the decoded <c>moby.buildkit.trace</c>; Ctrl-C sends <c>POST /build/cancel</c>.
/// </summary>
public sealed partial class BuildKitBackend : IBuildBackend, IDisposable
{
    /// <summary>Where a Dockerfile that is not the user's own file goes in the upload (the plan's planned ones go in numbered
    /// directories below it: <c>.layertool-build/0/Dockerfile</c>, ...).</summary>
    public const string PrivateDockerfile = ".layertool-build/Dockerfile";

    private const string PrivateDirectory = ".layertool-build/";

    private readonly DockerConnection _connection;
    private readonly BuildKitBackendOptions _options;
    private readonly IBuildKitProgress _progress;
    private readonly Action<string>? _warn;
    private readonly EngineHttp _http;
    private readonly DockerBuildEngine _engine;
    private readonly SemaphoreSlim _spoolGate = new(1, 1);
    private readonly string? _userDockerfileRelative;
    private ContextSpool? _spool;
    private string? _userDockerfileText;
    private IReadOnlyList<KeyValuePair<string, byte[]>>? _sharedPrivate;

    /// <param name="connection">The engine (for <c>--dind</c>: the inner one).</param>
    /// <param name="options">The context and the user's Dockerfile.</param>
    /// <param name="progress">Where progress goes.</param>
    /// <param name="warn">One-line warnings for people (stderr), or null.</param>
    public BuildKitBackend(DockerConnection connection, BuildKitBackendOptions options, IBuildKitProgress progress, Action<string>? warn = null)
    {
        _connection = connection ?? throw new ArgumentNullException(nameof(connection));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _progress = progress ?? throw new ArgumentNullException(nameof(progress));
        _warn = warn;
        _http = EngineHttp.Create(connection);
        _engine = new DockerBuildEngine(connection);
        var root = Path.GetFullPath(options.ContextDirectory);
        var dockerfile = Path.GetFullPath(options.DockerfilePath ?? Path.Combine(root, "Dockerfile"));
        var relative = Path.GetRelativePath(root, dockerfile).Replace('\\', '/');
        _userDockerfileRelative = relative.StartsWith("../", StringComparison.Ordinal) || relative == ".." || Path.IsPathRooted(relative) ? null : relative;
        DockerfileFullPath = dockerfile;
    }

    public string Name => "buildkit";

    private string DockerfileFullPath { get; }

    public async Task<StandardBuildResult> BuildAsync(StandardBuild build, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(build);
        var engineVersion = FrontendCheck.ParseEngineVersion(_connection.ServerVersion) ?? new Version(0, 0);
        var gaps = FrontendCheck.Check(build.Dockerfile, engineVersion, Path.GetFileName(DockerfileFullPath));
        if (gaps.Count > 0)
            throw new BuildException($"{Path.GetFileName(DockerfileFullPath)}: the engine's BuildKit cannot build this Dockerfile: {string.Join("; ", gaps)}");

        await PullBasesAsync(build, cancellationToken).ConfigureAwait(false);
        var spool = await SpoolAsync(cancellationToken).ConfigureAwait(false);

        string dockerfileName;
        IReadOnlyList<KeyValuePair<string, byte[]>> extra = [];
        if (TravelsAsIs(spool, build.Dockerfile))
        {
            dockerfileName = _userDockerfileRelative!;
        }
        else
        {
            if (CopiesContextRoot(build.Dockerfile)) throw new BuildException(PrivateDockerfileConflict(Path.GetFileName(DockerfileFullPath)));
            (dockerfileName, extra) = PrivateUpload(spool, build.Dockerfile);
        }

        var buildId = "layertool-" + Guid.NewGuid().ToString("N");
        var query = Query(build, dockerfileName, buildId);
        var trace = new BuildTrace();
        string? imageId = null;
        string? error = null;
        try
        {
            using var upload = await spool.OpenAsync(extra, cancellationToken).ConfigureAwait(false);
            using var request = new HttpRequestMessage(HttpMethod.Post, _http.Versioned("/build?" + query))
            {
                Content = new StreamContent(upload, 81920),
            };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-tar");
            using var response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
                throw new BuildException($"the engine refused the build: {EngineMessage(body)}");
            }
            var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
            {
                if (line.Length == 0) continue;
                var message = Parse(line);
                if (message.Error is { } e) error ??= e;
                if (message.Trace is { } t)
                {
                    var update = BuildKitStatusDecoder.DecodeBase64(t);
                    var touched = trace.Apply(update);
                    if (build.OnlyFromCache && touched.FirstOrDefault(WouldRun) is { } running)
                    {
                        // Stopped before its step runs: this build was wanted only from the cache.
                        await CancelOnEngineAsync(buildId).ConfigureAwait(false);
                        _progress.Complete();
                        throw new BuildException($"{running.Name}: not in the cache (the build was wanted only from the cache)");
                    }
                    _progress.OnStatus(trace, update, touched);
                }
                if (message.ImageId is { } id)
                {
                    imageId = id;
                    _progress.OnImageId(id);
                }
                if (message.Stream is { } text) _progress.OnStream(text);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await CancelOnEngineAsync(buildId).ConfigureAwait(false);
            _progress.Complete();
            throw;
        }
        catch (Exception e) when (e is HttpRequestException or IOException or SocketException)
        {
            _progress.Complete();
            throw new EngineException($"lost the Docker engine while trying to run a BuildKit build: {EngineErrors.Cause(e)}", e);
        }
        catch (FormatException e)
        {
            _progress.Complete();
            throw new EngineException($"the engine sent a BuildKit trace LayerTool cannot read: {e.Message}", e);
        }
        _progress.Complete();
        if (error is not null) throw new BuildException(FailureMessage(error, trace));
        if (imageId is null) throw new EngineException("the engine ended the BuildKit build without an image ID (is it older than Docker 18.09?)");
        var (steps, cached) = trace.StepCounts();
        return new StandardBuildResult(imageId, steps, cached);
    }

    /// <summary>A Dockerfile step (not a FROM) that has started without coming from the cache.</summary>
    private static bool WouldRun(TracedVertex v) =>
        v.IsStep && v.Started is not null && !v.Cached && !v.Name.Contains("] FROM ", StringComparison.Ordinal);

    /// <summary>The query string of one build; <c>pull</c>, memory and cpu limits, <c>rm</c> are never sent.</summary>
    internal static string Query(StandardBuild build, string dockerfileName, string buildId)
    {
        var q = new List<string> { "version=2", "dockerfile=" + Uri.EscapeDataString(dockerfileName), "buildid=" + buildId };
        q.AddRange(build.Tags.Select(t => "t=" + Uri.EscapeDataString(t)));
        if (build.Target is { Length: > 0 } target) q.Add("target=" + Uri.EscapeDataString(target));
        if (build.BuildArgs.Count > 0) q.Add("buildargs=" + Uri.EscapeDataString(JsonMap(build.BuildArgs)));
        if (build.Labels.Count > 0) q.Add("labels=" + Uri.EscapeDataString(JsonMap(build.Labels)));
        if (build.NetworkMode is { Length: > 0 } network)
        {
            if (network is not ("host" or "none" or "default"))
                throw new BuildException($"the engine's BuildKit runs RUN only with --network host, none or default, not {network}");
            q.Add("networkmode=" + network);
        }
        if (build.NoCache) q.Add("nocache=1");
        return string.Join('&', q);
    }

    private static string JsonMap(IReadOnlyDictionary<string, string> map)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            foreach (var (k, v) in map.OrderBy(p => p.Key, StringComparer.Ordinal)) json.WriteString(k, v);
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private sealed record StreamMessage(string? Stream, string? Trace, string? ImageId, string? Error);

    private static StreamMessage Parse(string line)
    {
        try
        {
            using var json = JsonDocument.Parse(line);
            var root = json.RootElement;
            if (root.ValueKind != JsonValueKind.Object) return new StreamMessage(null, null, null, null);
            string? Text(JsonElement e, string name) => e.TryGetProperty(name, out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;
            var id = Text(root, "id");
            string? trace = null, image = null;
            if (root.TryGetProperty("aux", out var aux))
            {
                if (id == "moby.buildkit.trace" && aux.ValueKind == JsonValueKind.String) trace = aux.GetString();
                else if (aux.ValueKind == JsonValueKind.Object) image = Text(aux, "ID");
            }
            var error = root.TryGetProperty("errorDetail", out var detail) && detail.ValueKind == JsonValueKind.Object ? Text(detail, "message") : null;
            error ??= Text(root, "error");
            return new StreamMessage(Text(root, "stream"), trace, image, error);
        }
        catch (JsonException e)
        {
            throw new FormatException($"not a JSON message: {e.Message}", e);
        }
    }

    private static string EngineMessage(string body)
    {
        try
        {
            using var json = JsonDocument.Parse(body);
            if (json.RootElement.ValueKind == JsonValueKind.Object && json.RootElement.TryGetProperty("message", out var m) && m.GetString() is { } text) return text.Trim();
        }
        catch (JsonException)
        {
            // Not JSON: the body as it is.
        }
        return body.Trim();
    }

    /// <summary>
    /// The failing step and what happened, in the words of Docker 23 and later:
    /// <c>[2/3] RUN false: process "/bin/sh -c false" did not complete successfully: exit code: 1</c>
    /// (Docker 20.10 says <c>executor failed running [/bin/sh -c false]: exit code: 1</c>).
    /// </summary>
    internal static string FailureMessage(string error, BuildTrace trace)
    {
        var text = error.Trim();
        var old = ExecutorFailed().Match(text);
        if (old.Success) text = $"process \"{old.Groups["command"].Value}\" did not complete successfully: exit code: {old.Groups["code"].Value}";
        foreach (var prefix in (string[])["failed to solve with frontend dockerfile.v0: ", "failed to solve: "])
            if (text.StartsWith(prefix, StringComparison.Ordinal)) text = text[prefix.Length..];
        return trace.FirstError is { } failed && failed.Name.Length > 0 ? $"{failed.Name}: {text}" : text;
    }

    [GeneratedRegex(@"executor failed running \[(?<command>.*)\]: exit code: (?<code>\d+)", RegexOptions.CultureInvariant)]
    private static partial Regex ExecutorFailed();

    /// <summary>Tells the engine to stop the solve (Ctrl-C, SIGTERM); best effort, within five seconds.</summary>
    private async Task CancelOnEngineAsync(string buildId)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, _http.Versioned("/build/cancel?id=" + buildId));
            using var response = await _http.SendAsync(request, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException or SocketException)
        {
            // The engine is gone or slow: the dropped request cancels the solve as well.
        }
    }

    private async Task PullBasesAsync(StandardBuild build, CancellationToken cancellationToken)
    {
        var model = DockerfileModel.Parse(build.Dockerfile, Path.GetFileName(DockerfileFullPath));
        foreach (var image in DindBaseImages.Of(model, build.BuildArgs))
        {
            if (!_options.AlwaysPull && await _engine.InspectImageAsync(image, cancellationToken).ConfigureAwait(false) is not null) continue;
            await _engine.PullImageAsync(image, null, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Whether <paramref name="dockerfile"/> is the user's file as the context holds it (it then travels as itself).</summary>
    private bool TravelsAsIs(ContextSpool spool, string dockerfile) =>
        _userDockerfileRelative is not null && spool.ContainsFile(_userDockerfileRelative) && _userDockerfileText == dockerfile;

    /// <summary>
    /// The name to build and the files to add for a Dockerfile that travels privately: every planned one (the same
    /// upload for each build of the plan, so the engine copies it once), or this one alone when it was not planned.
    /// </summary>
    private (string Name, IReadOnlyList<KeyValuePair<string, byte[]>> Files) PrivateUpload(ContextSpool spool, string dockerfile)
    {
        _sharedPrivate ??= [.. (_options.PlannedDockerfiles ?? []).Where(d => !TravelsAsIs(spool, d)).Distinct(StringComparer.Ordinal)
            .Select((d, i) => KeyValuePair.Create($"{PrivateDirectory}{i.ToString(System.Globalization.CultureInfo.InvariantCulture)}/Dockerfile", Encoding.UTF8.GetBytes(d)))];
        var text = Encoding.UTF8.GetBytes(dockerfile);
        foreach (var (name, content) in _sharedPrivate)
            if (content.AsSpan().SequenceEqual(text)) return (name, _sharedPrivate);
        return (PrivateDockerfile, [KeyValuePair.Create(PrivateDockerfile, text)]);
    }

    private async Task<ContextSpool> SpoolAsync(CancellationToken cancellationToken)
    {
        await _spoolGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_spool is not null) return _spool;
            _userDockerfileText = File.Exists(DockerfileFullPath) ? await File.ReadAllTextAsync(DockerfileFullPath, cancellationToken).ConfigureAwait(false) : null;
            _spool = await ContextSpool.CreateAsync(_options.ContextDirectory, cancellationToken).ConfigureAwait(false);
            return _spool;
        }
        finally
        {
            _spoolGate.Release();
        }
    }

    /// <summary>
    /// Without a session the engine reads the Dockerfile from the uploaded context, so a Dockerfile that is
    /// not the user's file as the context holds it is one more file there; a COPY of the context's root sees it.
    /// </summary>
    /// <summary>
    /// Whether a COPY or ADD (not <c>--from</c>) takes the context's root (<c>.</c>, <c>/</c>, <c>*</c>, <c>.*</c>): such a
    /// step would also copy a Dockerfile that travels in the context.
    /// </summary>
    public static bool CopiesContextRoot(string dockerfile)
    {
        var syntax = LayerTool.Dockerfile.Syntax.DockerfileParser.ParseLenient(dockerfile);
        return syntax.Instructions.Any(n => n.Keyword is "COPY" or "ADD"
            && !n.Flags.Any(f => f.Text.StartsWith("--from=", StringComparison.Ordinal))
            && n.Arguments.Count > 1
            && n.Arguments.Take(n.Arguments.Count - 1).Any(a => a.Text.Trim('/') is "" or "." or "./" || a.Text.StartsWith('*') || a.Text.StartsWith(".*", StringComparison.Ordinal)));
    }

    /// <summary>
    /// Whether the file built must travel in the context as <see cref="PrivateDockerfile"/>: it is not the context's
    /// own Dockerfile as it stands (<paramref name="rewritten"/>: the planner changed it), or that file is outside the
    /// context or excluded by its <c>.dockerignore</c>.
    /// </summary>
    public static bool TravelsPrivately(BuildKitBackendOptions options, bool rewritten)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (rewritten) return true;
        var root = Path.GetFullPath(options.ContextDirectory);
        var relative = Path.GetRelativePath(root, Path.GetFullPath(options.DockerfilePath ?? Path.Combine(root, "Dockerfile"))).Replace('\\', '/');
        if (relative.StartsWith("../", StringComparison.Ordinal) || relative == ".." || Path.IsPathRooted(relative)) return true;
        return LayerTool.Build.Context.BuildContext.Open(root, null).Rules.IsExcluded(relative);
    }

    /// <summary>Why such a build is refused: its result would differ from docker's.</summary>
    public static string PrivateDockerfileConflict(string file) =>
        $"{file}: without a session the engine's BuildKit reads the Dockerfile from the context, so the file built here would travel in it as {PrivateDockerfile} and a COPY of the context's root would copy it; --builder classic builds it exactly";

    public void Dispose()
    {
        _spool?.Dispose();
        _http.Dispose();
        _spoolGate.Dispose();
    }
}
