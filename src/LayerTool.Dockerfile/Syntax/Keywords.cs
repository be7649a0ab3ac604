namespace LayerTool.Dockerfile.Syntax;

/// <summary>Instruction keywords, upper case. TAG and COMPRESS are LayerTool's extensions.</summary>
public static class Keywords
{
    public const string Add = "ADD";
    public const string Arg = "ARG";
    public const string Cmd = "CMD";
    public const string Copy = "COPY";
    public const string Entrypoint = "ENTRYPOINT";
    public const string Env = "ENV";
    public const string Expose = "EXPOSE";
    public const string From = "FROM";
    public const string Healthcheck = "HEALTHCHECK";
    public const string Label = "LABEL";
    public const string Maintainer = "MAINTAINER";
    public const string Onbuild = "ONBUILD";
    public const string Run = "RUN";
    public const string Shell = "SHELL";
    public const string StopSignal = "STOPSIGNAL";
    public const string User = "USER";
    public const string Volume = "VOLUME";
    public const string Workdir = "WORKDIR";

    /// <summary>LayerTool: <c>TAG ref [ref...]</c> tags the image built so far.</summary>
    public const string Tag = "TAG";

    /// <summary>LayerTool: <c>COMPRESS [base]</c> squashes the layers added since base into one.</summary>
    public const string Compress = "COMPRESS";

    /// <summary>Every keyword this front end knows.</summary>
    public static IReadOnlySet<string> All { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        Add, Arg, Cmd, Copy, Entrypoint, Env, Expose, From, Healthcheck, Label, Maintainer, Onbuild, Run, Shell,
        StopSignal, User, Volume, Workdir, Tag, Compress,
    };

    /// <summary>Instructions whose arguments may hold heredocs (<c>&lt;&lt;EOF</c>).</summary>
    public static IReadOnlySet<string> WithHeredocs { get; } = new HashSet<string>(StringComparer.Ordinal) { Add, Copy, Run };

    /// <summary>
    /// Instructions whose words the builder expands with the current ARG/ENV values (Docker's list, plus TAG
    /// and COMPRESS). RUN, CMD, ENTRYPOINT, SHELL and HEALTHCHECK are left to the shell at run time. ONBUILD
    /// expands its trigger when it fires, not when it is declared.
    /// </summary>
    public static IReadOnlySet<string> Expanding { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        Add, Copy, Env, Expose, From, Label, StopSignal, User, Volume, Workdir, Arg, Tag, Compress,
    };

    /// <summary>True when the builder expands variables in <paramref name="keyword"/>'s arguments.</summary>
    public static bool Expands(string keyword) => Expanding.Contains(keyword.ToUpperInvariant());
}
