using System.Text.Json.Nodes;

namespace LayerTool.Image.Rebase;

/// <summary>
/// One runtime-config field in which the two bases differ.
/// </summary>
/// <param name="Key">The field: <c>User</c>, <c>WorkingDir</c>, <c>Entrypoint</c>, <c>Cmd</c>, <c>Env.NAME</c> or <c>Labels.NAME</c>.</param>
/// <param name="OldBase">The old base's value (JSON text for lists), or null when it has none.</param>
/// <param name="NewBase">The new base's value, or null when it has none.</param>
/// <param name="Image">The image's value, or null when it has none.</param>
/// <param name="Inherited">True when the image has the old base's value: it inherited it, so the new base's
/// change reaches the image only if taken. False when the image sets its own value (the change does not matter).</param>
/// <param name="Applied">True when <c>--take-base-config</c> took the new base's value into the result.</param>
public sealed record ConfigDifference(string Key, string? OldBase, string? NewBase, string? Image, bool Inherited, bool Applied)
{
    /// <summary>A change of the base that the rebased image does not get: inherited and not applied.</summary>
    public bool IsConflict => Inherited && !Applied;
}

/// <summary>
/// The runtime-config fields a base passes on to the images built on it (Env, including PATH, User,
/// WorkingDir, Entrypoint, Cmd, Labels), compared between the old and the new base, and applied to the
/// rebased image only when asked. <c>--take-base-config</c> keys: a field (<c>Env</c>, <c>Labels</c>,
/// <c>User</c>, <c>WorkingDir</c>, <c>Entrypoint</c>, <c>Cmd</c>; case-insensitive) or one variable or label
/// (<c>Env.PATH</c>, <c>Labels.version</c>; the name after the dot is exact).
/// </summary>
public static class BaseConfigDiff
{
    private static readonly string[] Fields = ["Env", "Labels", "User", "WorkingDir", "Entrypoint", "Cmd"];

    /// <summary>Every field the bases differ in, in a fixed order, marked applied when a key of <paramref name="take"/> names it.</summary>
    public static IReadOnlyList<ConfigDifference> Compare(ImageConfig oldBase, ImageConfig newBase, ImageConfig image, IReadOnlyList<string> take)
    {
        ArgumentNullException.ThrowIfNull(oldBase);
        ArgumentNullException.ThrowIfNull(newBase);
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(take);
        var keys = take.Select(Normalize).ToList();
        var o = oldBase.Config;
        var n = newBase.Config;
        var i = image.Config;
        var list = new List<ConfigDifference>();
        var oldEnv = EnvMap(o.Env);
        var newEnv = EnvMap(n.Env);
        var imageEnv = EnvMap(i.Env);
        foreach (var name in oldEnv.Keys.Union(newEnv.Keys).Order(StringComparer.Ordinal))
        {
            Add("Env", name, oldEnv.GetValueOrDefault(name), newEnv.GetValueOrDefault(name), imageEnv.GetValueOrDefault(name));
        }

        var oldLabels = o.Labels ?? new Dictionary<string, string>();
        var newLabels = n.Labels ?? new Dictionary<string, string>();
        var imageLabels = i.Labels ?? new Dictionary<string, string>();
        foreach (var name in oldLabels.Keys.Union(newLabels.Keys).Order(StringComparer.Ordinal))
        {
            if (name is SquashConfig.BaseNameLabel or SquashConfig.BaseDigestLabel) continue;
            Add("Labels", name, oldLabels.GetValueOrDefault(name), newLabels.GetValueOrDefault(name), imageLabels.GetValueOrDefault(name));
        }

        Add("User", null, o.User, n.User, i.User);
        Add("WorkingDir", null, o.WorkingDir, n.WorkingDir, i.WorkingDir);
        Add("Entrypoint", null, List(o.Entrypoint), List(n.Entrypoint), List(i.Entrypoint));
        Add("Cmd", null, List(o.Cmd), List(n.Cmd), List(i.Cmd));
        return list;

        void Add(string field, string? name, string? before, string? after, string? now)
        {
            if (string.Equals(before, after, StringComparison.Ordinal)) return;
            var key = name is null ? field : $"{field}.{name}";
            var applied = keys.Any(k => k == field || k == key);
            list.Add(new ConfigDifference(key, before, after, now, string.Equals(now, before, StringComparison.Ordinal), applied));
        }
    }

    /// <summary>The config with the new base's value of every applied difference (a null value removes the field, variable or label).</summary>
    public static ImageConfig Apply(ImageConfig config, IReadOnlyList<ConfigDifference> differences)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(differences);
        var applied = differences.Where(d => d.Applied).ToList();
        if (applied.Count == 0) return config;
        return config.Edit(json =>
        {
            if (json["config"] is not JsonObject target)
            {
                target = new JsonObject();
                json["config"] = target;
            }

            foreach (var d in applied)
            {
                var dot = d.Key.IndexOf('.', StringComparison.Ordinal);
                var field = dot < 0 ? d.Key : d.Key[..dot];
                var name = dot < 0 ? null : d.Key[(dot + 1)..];
                switch (field)
                {
                    case "Env":
                        SetEnv(target, name!, d.NewBase);
                        break;
                    case "Labels":
                        ImageConfig.SetLabels(json, [new(name!, d.NewBase)]);
                        break;
                    case "Entrypoint" or "Cmd":
                        Set(target, field, d.NewBase is null ? null : JsonNode.Parse(d.NewBase));
                        break;
                    default:
                        Set(target, field, d.NewBase is null ? null : JsonValue.Create(d.NewBase));
                        break;
                }
            }
        });
    }

    /// <summary>Checks a <c>--take-base-config</c> key and returns it in canonical form (<c>env.path</c> → <c>Env.path</c>).</summary>
    public static string Normalize(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var dot = key.IndexOf('.', StringComparison.Ordinal);
        var field = dot < 0 ? key : key[..dot];
        var canonical = Fields.FirstOrDefault(f => string.Equals(f, field, StringComparison.OrdinalIgnoreCase));
        if (canonical is null || (dot >= 0 && (canonical is not ("Env" or "Labels") || dot == key.Length - 1)))
        {
            throw new RebaseException(
                $"--take-base-config '{key}': not a config key (use Env, Env.NAME, Labels, Labels.NAME, User, WorkingDir, Entrypoint or Cmd).");
        }

        return dot < 0 ? canonical : canonical + key[dot..];
    }

    private static Dictionary<string, string> EnvMap(IReadOnlyList<string>? env)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var item in env ?? [])
        {
            var eq = item.IndexOf('=', StringComparison.Ordinal);
            map[eq < 0 ? item : item[..eq]] = eq < 0 ? "" : item[(eq + 1)..];
        }

        return map;
    }

    private static string? List(IReadOnlyList<string>? items) => items is null ? null : Json.StringArray(items).ToJsonString();

    private static void SetEnv(JsonObject target, string name, string? value)
    {
        var env = target["Env"] as JsonArray ?? [];
        var result = new JsonArray();
        var done = false;
        foreach (var item in env)
        {
            var text = item?.GetValue<string>() ?? "";
            var eq = text.IndexOf('=', StringComparison.Ordinal);
            if (!string.Equals(eq < 0 ? text : text[..eq], name, StringComparison.Ordinal))
            {
                result.Add((JsonNode)JsonValue.Create(text));
                continue;
            }

            if (value is not null && !done) result.Add((JsonNode)JsonValue.Create($"{name}={value}"));
            done = true;
        }

        if (value is not null && !done) result.Add((JsonNode)JsonValue.Create($"{name}={value}"));
        target["Env"] = result;
    }

    private static void Set(JsonObject target, string name, JsonNode? value)
    {
        if (value is null) target.Remove(name);
        else target[name] = value;
    }
}
