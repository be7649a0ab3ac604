using System.Diagnostics;
using System.IO.Pipelines;
using System.Security.Cryptography;
using System.Text;
using Docker.DotNet;
using Docker.DotNet.Models;
using LayerTool.Image.Layers;
using LayerTool.Image.Layers.Tar;

namespace LayerTool.Docker.Dind;

/// <summary>What to build the dind image from.</summary>
/// <param name="RepositoryRoot">The LayerTool repository (Dockerfile.dind, wrapdocker.sh, src/).</param>
/// <param name="Tag">The image's name.</param>
/// <param name="BaseImage">The <c>BASE</c> build argument; null = Dockerfile.dind's default.</param>
/// <param name="LayerToolBinary">An already published self-contained <c>layertool</c>; null = publish
/// src/LayerTool.Cli now.</param>
/// <param name="ReuseIfUpToDate">Skip the build when <paramref name="Tag"/> already carries the same
/// inputs hash (Dockerfile.dind, wrapdocker.sh, the sources, the base image ID).</param>
/// <param name="Labels">Extra labels on the image.</param>
public sealed record DindImageOptions(
    string RepositoryRoot,
    string Tag = DindOptions.DefaultImage,
    string? BaseImage = null,
    string? LayerToolBinary = null,
    bool ReuseIfUpToDate = false,
    IReadOnlyDictionary<string, string>? Labels = null);

/// <summary>The built (or reused) dind image.</summary>
public sealed record DindImageResult(string Tag, string ImageId, string InputsHash, bool Reused, TimeSpan PublishTime, TimeSpan BuildTime);

/// <summary>
/// Builds the dind image: publishes <c>layertool</c> (self-contained, single file, for the engine's
/// architecture), streams a small context (Dockerfile.dind, wrapdocker.sh, the binary) to the engine's
/// classic builder with the host network (the Dockerfile installs Debian's docker.io).
/// </summary>
public static class DindImageBuilder
{
    /// <summary>Label holding the hash of everything the image was built from.</summary>
    public const string InputsLabel = "layertool.dind.inputs";

    public const string DockerfileName = "Dockerfile.dind";
    public const string EntrypointName = "wrapdocker.sh";

    /// <summary>Where Dockerfile.dind expects the binary in its context.</summary>
    public const string BinaryInContext = "artifacts/dind/layertool";

    private const string DefaultBase = "debian:bookworm";

    public static async Task<DindImageResult> BuildAsync(DockerConnection engine, DindImageOptions options, IProgress<string>? log,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(options);
        var root = options.RepositoryRoot;
        foreach (var name in new[] { DockerfileName, EntrypointName })
            if (!File.Exists(Path.Combine(root, name)))
                throw new EngineException($"{Path.Combine(root, name)} not found: point at a LayerTool repository");

        var info = await engine.Client.System.GetSystemInfoAsync(cancellationToken).ConfigureAwait(false);
        var rid = RuntimeIdentifierFor(info.Architecture);
        var baseRef = options.BaseImage ?? DefaultBase;
        var baseId = await ImageTransfer.ImageIdAsync(engine, baseRef, cancellationToken).ConfigureAwait(false) ?? baseRef;
        var hash = await ComputeInputsHashAsync(root, options.LayerToolBinary, $"{baseId}\n{rid}", cancellationToken).ConfigureAwait(false);

        if (options.ReuseIfUpToDate)
        {
            try
            {
                var existing = await engine.Client.Images.InspectImageAsync(options.Tag, cancellationToken).ConfigureAwait(false);
                if (existing.Config?.Labels is { } labels && labels.TryGetValue(InputsLabel, out var have) && have == hash)
                {
                    log?.Report($"{options.Tag} is up to date ({hash[..12]})");
                    return new DindImageResult(options.Tag, existing.ID, hash, true, TimeSpan.Zero, TimeSpan.Zero);
                }
            }
            catch (DockerImageNotFoundException)
            {
            }
        }

        var watch = Stopwatch.StartNew();
        string? publishDirectory = null;
        try
        {
            var binary = options.LayerToolBinary;
            if (binary is null)
            {
                publishDirectory = Directory.CreateTempSubdirectory("layertool-dind-publish-").FullName;
                log?.Report($"publishing layertool ({rid}, self-contained, single file)");
                binary = await PublishAsync(root, rid, publishDirectory, cancellationToken).ConfigureAwait(false);
            }
            else if (!File.Exists(binary))
            {
                throw new EngineException($"{binary} not found (--layertool must name a published layertool binary)");
            }
            var publishTime = watch.Elapsed;
            watch.Restart();
            var id = await BuildImageAsync(engine, options, root, binary, hash, log, cancellationToken).ConfigureAwait(false);
            log?.Report($"built {options.Tag} ({id[..Math.Min(19, id.Length)]}) in {watch.Elapsed.TotalSeconds:0.0}s");
            return new DindImageResult(options.Tag, id, hash, false, publishTime, watch.Elapsed);
        }
        finally
        {
            if (publishDirectory is not null)
            {
                try { Directory.Delete(publishDirectory, recursive: true); }
                catch (IOException) { }
            }
        }
    }

    /// <summary>The .NET runtime identifier for an engine architecture (<c>GET /info</c> Architecture).</summary>
    public static string RuntimeIdentifierFor(string? architecture) => architecture switch
    {
        "x86_64" or "amd64" => "linux-x64",
        "aarch64" or "arm64" => "linux-arm64",
        "armv7l" or "arm" => "linux-arm",
        _ => throw new EngineException($"no .NET runtime for the engine's architecture '{architecture}'"),
    };

    /// <summary>
    /// SHA-256 over what the image is made of: Dockerfile.dind, wrapdocker.sh, and either the given
    /// binary or the sources it would be published from, plus <paramref name="salt"/> (base image ID, RID).
    /// </summary>
    public static async Task<string> ComputeInputsHashAsync(string root, string? binary, string salt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(root);
        var files = new List<string> { DockerfileName, EntrypointName };
        if (binary is null)
        {
            foreach (var top in new[] { "Directory.Build.props", "Directory.Packages.props", "global.json" })
                if (File.Exists(Path.Combine(root, top))) files.Add(top);
            var src = Path.Combine(root, "src");
            files.AddRange(Directory.EnumerateFiles(src, "*", SearchOption.AllDirectories)
                .Select(f => Path.GetRelativePath(root, f).Replace('\\', '/'))
                .Where(f => !f.Contains("/bin/", StringComparison.Ordinal) && !f.Contains("/obj/", StringComparison.Ordinal))
                .Where(f => f.EndsWith(".cs", StringComparison.Ordinal) || f.EndsWith(".csproj", StringComparison.Ordinal)
                            || f.EndsWith(".json", StringComparison.Ordinal) || f.EndsWith(".props", StringComparison.Ordinal)
                            || f.EndsWith(".targets", StringComparison.Ordinal) || f.EndsWith(".resx", StringComparison.Ordinal)));
        }
        files.Sort(StringComparer.Ordinal);

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Encoding.UTF8.GetBytes(salt + "\n"));
        var buffer = new byte[81920];
        async Task AddAsync(string label, string path)
        {
            hash.AppendData(Encoding.UTF8.GetBytes($"{label}\n{new FileInfo(path).Length}\n"));
            var stream = File.OpenRead(path);
            await using (stream.ConfigureAwait(false))
            {
                int n;
                while ((n = await stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0) hash.AppendData(buffer, 0, n);
            }
        }
        foreach (var f in files) await AddAsync(f, Path.Combine(root, f)).ConfigureAwait(false);
        if (binary is not null) await AddAsync(BinaryInContext, binary).ConfigureAwait(false);
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static async Task<string> PublishAsync(string root, string rid, string output, CancellationToken cancellationToken)
    {
        var project = Path.Combine(root, "src", "LayerTool.Cli", "LayerTool.Cli.csproj");
        var psi = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // Its own artifacts folder: no clash with the developer's bin/ and obj/ (a RID-specific restore
        // would rewrite their project.assets.json).
        foreach (var a in new[]
                 {
                     "publish", project, "-c", "Release", "-r", rid, "--self-contained", "-p:PublishSingleFile=true",
                     "-p:EnableCompressionInSingleFile=true", "-p:DebugType=none", "--artifacts-path", Path.Combine(output, "artifacts"),
                     "-o", Path.Combine(output, "out"), "-nologo", "-v", "quiet",
                 })
            psi.ArgumentList.Add(a);
        using var process = Process.Start(psi) ?? throw new EngineException("cannot start `dotnet` to publish layertool (is the .NET SDK on PATH?)");
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        try
        {
            await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        if (process.ExitCode != 0)
            throw new EngineException($"dotnet publish of layertool failed ({process.ExitCode}):\n{await stdout.ConfigureAwait(false)}{await stderr.ConfigureAwait(false)}".TrimEnd());
        var binary = Path.Combine(output, "out", "layertool");
        return File.Exists(binary) ? binary : throw new EngineException($"dotnet publish produced no {binary}");
    }

    private static async Task<string> BuildImageAsync(DockerConnection engine, DindImageOptions options, string root, string binary, string hash,
        IProgress<string>? log, CancellationToken cancellationToken)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal) { [InputsLabel] = hash };
        foreach (var (k, v) in options.Labels ?? new Dictionary<string, string>()) labels[k] = v;
        var parameters = new ImageBuildParameters
        {
            Dockerfile = DockerfileName,
            Tags = [options.Tag],
            Labels = labels,
            NetworkMode = "host",
            Remove = true,
            ForceRemove = true,
        };
        if (options.BaseImage is not null) parameters.BuildArgs = new Dictionary<string, string> { ["BASE"] = options.BaseImage };

        // The context is streamed as it is tarred: the 70 MB binary is never held in memory.
        var pipe = new Pipe();
        var writer = WriteContextAsync(pipe.Writer.AsStream(), root, binary, cancellationToken);
        var errors = new List<string>();
        var progress = new ImmediateProgress<JSONMessage>(m =>
        {
            if (m.Error?.Message is { Length: > 0 } e) errors.Add(e);
            if (m.Stream is { Length: > 0 } s)
                foreach (var line in s.Split('\n', StringSplitOptions.RemoveEmptyEntries)) log?.Report(line.TrimEnd());
        });
        var context = pipe.Reader.AsStream();
        await using (context.ConfigureAwait(false))
        {
            try
            {
                await engine.Client.Images.BuildImageFromDockerfileAsync(parameters, context, null, null, progress, cancellationToken)
                    .ConfigureAwait(false);
            }
            catch (DockerApiException e)
            {
                throw new EngineException($"building {options.Tag} failed: {e.ResponseBody?.Trim() ?? e.Message}", e);
            }
            await writer.ConfigureAwait(false);
        }
        if (errors.Count > 0) throw new EngineException($"building {options.Tag} failed: {string.Join("; ", errors)}");
        var image = await engine.Client.Images.InspectImageAsync(options.Tag, cancellationToken).ConfigureAwait(false);
        return image.ID;
    }

    private static async Task WriteContextAsync(Stream destination, string root, string binary, CancellationToken cancellationToken)
    {
        await using (destination.ConfigureAwait(false))
        {
            var tar = new LayerTarWriter(destination, leaveOpen: true, hashLayer: false);
            await using (tar.ConfigureAwait(false))
            {
                const int file = 0x1A4; // 0644
                const int exe = 0x1ED; // 0755
                await AddFileAsync(tar, Path.Combine(root, DockerfileName), DockerfileName, file, cancellationToken).ConfigureAwait(false);
                await AddFileAsync(tar, Path.Combine(root, EntrypointName), EntrypointName, exe, cancellationToken).ConfigureAwait(false);
                await AddFileAsync(tar, binary, BinaryInContext, exe, cancellationToken).ConfigureAwait(false);
                await tar.FinishAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private static async Task AddFileAsync(LayerTarWriter tar, string path, string name, int mode, CancellationToken cancellationToken)
    {
        var data = File.OpenRead(path);
        await using (data.ConfigureAwait(false))
        {
            var entry = new LayerEntry
            {
                Path = LayerPath.Parse(name),
                Type = LayerEntryType.RegularFile,
                Mode = mode,
                Size = data.Length,
                // Fixed times: the builder's cache key for COPY is content only, but keep the tar stable too.
                ModificationTime = DateTimeOffset.UnixEpoch,
            };
            await tar.WriteEntryAsync(entry, data, cancellationToken).ConfigureAwait(false);
        }
    }
}
