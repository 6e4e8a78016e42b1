using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace EdgeTune.Cli;

/// <summary>
/// <c>--config run.json</c>: a JSON object of option values for the verb being run (<c>{"steps": 200, "max_memory": "2GB",
/// "prompt": "..."}</c>; keys are option names with or without the leading dashes, in kebab or snake case). Precedence is
/// built-in defaults &lt; the file &lt; flags on the command line: the file's settings become command-line tokens for
/// the options the command line does not set, so every verb reads them through its ordinary option binding and
/// validation. <see cref="Resolved"/> gives every option's final value, which long-running verbs write into their run folder.
/// </summary>
public static class RunConfigFile
{
    /// <summary>The recursive <c>--config</c> option, added once to the root command.</summary>
    public static Option<string?> CreateOption() => new("--config")
    {
        Description = "JSON file of option values for this verb (defaults < file < flags)",
        Recursive = true,
    };

    /// <summary>The arguments with the config file's settings appended for options the command line leaves unset;
    /// <paramref name="args"/> unchanged when no <c>--config</c> is given. <paramref name="first"/> is the parse of <paramref name="args"/>.</summary>
    /// <exception cref="CliException">The file is missing or malformed, or names a setting the verb does not have (exit 2 or 3).</exception>
    public static string[] Expand(ParseResult first, Option<string?> config, string[] args)
    {
        if (first.GetValue(config) is not { } path) return args;
        var command = first.CommandResult.Command;
        JsonObject settings;
        try
        {
            settings = JsonNode.Parse(File.ReadAllText(path), documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true }) as JsonObject
                ?? throw new CliException(CliErrors.Input, $"--config '{path}': the file must hold one JSON object of option values");
        }
        catch (FileNotFoundException) { throw new CliException(CliErrors.Input, $"--config '{path}' does not exist"); }
        catch (DirectoryNotFoundException) { throw new CliException(CliErrors.Input, $"--config '{path}' does not exist"); }
        catch (JsonException e) { throw new CliException(CliErrors.Input, $"--config '{path}' is not valid JSON: {e.Message}"); }

        var options = OptionsOf(command).ToList();
        var extra = new List<string>();
        foreach (var (key, value) in settings)
        {
            string flag = "--" + key.TrimStart('-').Replace('_', '-');
            var option = options.FirstOrDefault(o => o.Name == flag || o.Aliases.Contains(flag))
                ?? throw new CliException(CliErrors.Usage,
                    $"--config '{path}': 'edgetune {command.Name}' has no option '{key}' (it has: {string.Join(", ", options.Select(o => o.Name.TrimStart('-')).Where(n => n is not ("config" or "help" or "verbose")))})");
            if (option.Name == "--config") throw new CliException(CliErrors.Usage, $"--config '{path}': a config file cannot name another config file");
            if (first.GetResult(option) is { Implicit: false }) continue; // the command line wins
            foreach (string token in Tokens(option, value, path, key)) extra.Add(token);
        }
        return [.. args, .. extra];
    }

    /// <summary>Every option of the parsed command with its final value (defaults, file and flags applied), as JSON.</summary>
    public static JsonObject Resolved(ParseResult parse)
    {
        var o = new JsonObject();
        foreach (var option in OptionsOf(parse.CommandResult.Command))
        {
            if (option.Name is "--help" or "--version" or "--config") continue;
            object? value;
            try { value = parse.GetResult(option)?.GetValueOrDefault<object?>() ?? DefaultOf(option); }
            catch (InvalidCastException) { value = null; }
            o[option.Name.TrimStart('-').Replace('-', '_')] = ToNode(value);
        }
        return o;
    }

    /// <summary>Verbs whose <c>--out</c> is a run folder: the resolved options go into it as <c>options.json</c>.</summary>
    public static readonly IReadOnlySet<string> RunFolderVerbs = new HashSet<string>(StringComparer.Ordinal) { "finetune", "distill" };

    /// <summary>Writes <see cref="Resolved"/> into the run folder of a <see cref="RunFolderVerbs"/> verb (atomically: a
    /// temporary file renamed over <c>options.json</c>); other verbs write nothing.</summary>
    public static void WriteResolved(ParseResult parse)
    {
        var command = parse.CommandResult.Command;
        if (!RunFolderVerbs.Contains(command.Name)) return;
        if (OptionsOf(command).FirstOrDefault(o => o.Name == "--out") is not { } outOption) return;
        if (parse.GetResult(outOption)?.GetValueOrDefault<object?>() is not string dir || dir.Length == 0) return;
        // An encrypted run (new with --encrypt, or an existing encrypted folder) gets its options.json encrypted, written
        // by the command once it holds the key (EncryptionCliOptions.BindForWriting); nothing plain is written here.
        if (OptionsOf(command).FirstOrDefault(o => o.Name == "--encrypt") is { } encrypt && parse.GetResult(encrypt)?.GetValueOrDefault<object?>() is true) return;
        if (File.Exists(Path.Combine(dir, EdgeTune.Security.RunFiles.ManifestFile))) return;
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, "options.json"), temp = path + ".tmp";
        File.WriteAllText(temp, ResolvedJson(parse));
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>Writes options.json of an encrypted run folder through <paramref name="files"/> (encrypted).</summary>
    public static void WriteResolved(ParseResult parse, EdgeTune.Security.RunFiles files)
    {
        ArgumentNullException.ThrowIfNull(files);
        files.WriteAllText(Path.Combine(files.Root!, "options.json"), ResolvedJson(parse));
    }

    private static string ResolvedJson(ParseResult parse) =>
        new JsonObject { ["verb"] = parse.CommandResult.Command.Name, ["options"] = Resolved(parse) }
            .ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    private static object? DefaultOf(Option option)
    {
        try { return option.HasDefaultValue ? option.GetDefaultValue() : null; }
        catch (InvalidOperationException) { return null; }
    }

    private static JsonNode? ToNode(object? value) => value switch
    {
        null => null,
        string s => JsonValue.Create(s),
        bool b => JsonValue.Create(b),
        int i => JsonValue.Create(i),
        long l => JsonValue.Create(l),
        double d => JsonValue.Create(d),
        float f => JsonValue.Create(f),
        System.Collections.IEnumerable list => new JsonArray(list.Cast<object?>().Select(ToNode).ToArray()),
        _ => JsonValue.Create(Convert.ToString(value, CultureInfo.InvariantCulture)),
    };

    private static IEnumerable<Option> OptionsOf(Command command)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (Command? c = command; c is not null; c = c.Parents.OfType<Command>().FirstOrDefault())
            foreach (var o in c.Options)
                if ((c == command || o.Recursive) && seen.Add(o.Name)) yield return o;
    }

    private static IEnumerable<string> Tokens(Option option, JsonNode? value, string path, string key)
    {
        string Scalar(JsonNode? v) => v switch
        {
            JsonValue j when j.TryGetValue(out string? s) => s,
            JsonValue j when j.TryGetValue(out bool b) => b ? "true" : "false",
            JsonValue j when j.TryGetValue(out double d) => d.ToString("R", CultureInfo.InvariantCulture),
            _ => throw new CliException(CliErrors.Usage, $"--config '{path}': setting '{key}' must be a string, number or boolean{(option.ValueType.IsArray || option.ValueType.IsGenericType ? " or a list of them" : "")}"),
        };
        if (value is null) yield break; // null: keep the built-in default
        if (value is JsonArray list)
        {
            foreach (var item in list) { yield return option.Name; yield return Scalar(item); }
            yield break;
        }
        if (option.ValueType == typeof(bool))
        {
            // A boolean flag: true sets it, false leaves it off.
            if (Scalar(value) == "true") yield return option.Name;
            else if (Scalar(value) != "false") throw new CliException(CliErrors.Usage, $"--config '{path}': setting '{key}' must be true or false");
            yield break;
        }
        yield return option.Name;
        yield return Scalar(value);
    }
}
