namespace LayerTool.Registry.Http;

/// <summary>Where a registry's API is reached: the origin, or a mirror of it.</summary>
/// <param name="Registry">The registry as references name it (<c>docker.io</c>, <c>localhost:5000</c>).</param>
/// <param name="BaseUri">The URL under which <c>v2/</c> lives (ends with a slash).</param>
/// <param name="IsMirror">Whether this is a mirror (then its own host's credentials are used).</param>
internal sealed record RegistryEndpoint(string Registry, Uri BaseUri, bool IsMirror)
{
    /// <summary>The host whose credentials go with requests here.</summary>
    public string CredentialHost => IsMirror ? BaseUri.Authority : Registry;

    /// <summary>A URL under <c>/v2/</c>.</summary>
    public Uri Api(string path) => new(BaseUri, "v2/" + path);

    public override string ToString() => IsMirror ? $"mirror {BaseUri} of {Registry}" : Registry;
}
