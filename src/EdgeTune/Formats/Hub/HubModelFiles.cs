using System.Text.Json;

namespace EdgeTune.Formats.Hub;

/// <summary>
/// Which files of a Hub repository make up a model folder EdgeTune can load: config.json, the
/// safetensors weights (the shards named in model.safetensors.index.json when there is one, else
/// model.safetensors, else every top-level *.safetensors), and the tokenizer and generation files that
/// the repository has.
/// </summary>
public static class HubModelFiles
{
    public const string Config = "config.json";
    public const string SafetensorsIndex = "model.safetensors.index.json";
    public const string SingleSafetensors = "model.safetensors";

    /// <summary>Files taken when the repository has them (none of them is required).</summary>
    public static readonly IReadOnlyList<string> OptionalFiles =
    [
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "tokenizer.model",
        "special_tokens_map.json",
        "chat_template.jinja",
    ];

    /// <summary>
    /// The files to download from a repository listing, in download order. The index comes before
    /// its shards are known: read it with <see cref="ShardsFromIndex"/>. Empty when there are no
    /// safetensors weights.
    /// </summary>
    public static IReadOnlyList<string> Select(IEnumerable<string> repoFiles)
    {
        var all = new HashSet<string>(repoFiles, StringComparer.Ordinal);
        var chosen = new List<string>();
        if (all.Contains(Config)) chosen.Add(Config);
        chosen.AddRange(OptionalFiles.Where(all.Contains));
        if (all.Contains(SafetensorsIndex)) chosen.Add(SafetensorsIndex);
        else if (all.Contains(SingleSafetensors)) chosen.Add(SingleSafetensors);
        else
        {
            var top = all.Where(f => !f.Contains('/') && f.EndsWith(".safetensors", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
            if (top.Count == 0) return [];
            chosen.AddRange(top);
        }
        return chosen;
    }

    /// <summary>The distinct shard file names in an index's <c>weight_map</c>, sorted.</summary>
    public static IReadOnlyList<string> ShardsFromIndex(string indexPath)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(indexPath));
            if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new FormatException($"{indexPath}: no 'weight_map' object");
            var shards = new SortedSet<string>(StringComparer.Ordinal);
            foreach (var entry in map.EnumerateObject())
            {
                string? shard = entry.Value.ValueKind == JsonValueKind.String ? entry.Value.GetString() : null;
                if (string.IsNullOrEmpty(shard)) throw new FormatException($"{indexPath}: weight_map['{entry.Name}'] is not a file name");
                HubCache.ToRelativePath(shard);
                shards.Add(shard);
            }
            if (shards.Count == 0) throw new FormatException($"{indexPath}: 'weight_map' is empty");
            return [.. shards];
        }
        catch (JsonException e)
        {
            throw new FormatException($"{indexPath}: invalid JSON: {e.Message}", e);
        }
    }

    /// <summary>
    /// What a local folder lacks to be a loadable model: config.json, and the weights (all shards of
    /// the index, or at least one *.safetensors). Empty when complete.
    /// </summary>
    public static IReadOnlyList<string> MissingFiles(string folder)
    {
        var missing = new List<string>();
        if (!File.Exists(Path.Combine(folder, Config))) missing.Add(Config);
        string index = Path.Combine(folder, SafetensorsIndex);
        if (File.Exists(index))
        {
            foreach (string shard in ShardsFromIndex(index))
                if (!File.Exists(Path.Combine(folder, HubCache.ToRelativePath(shard)))) missing.Add(shard);
        }
        else if (!Directory.Exists(folder) || !Directory.EnumerateFiles(folder, "*.safetensors").Any(File.Exists))
        {
            missing.Add("*.safetensors");
        }
        return missing;
    }
}
