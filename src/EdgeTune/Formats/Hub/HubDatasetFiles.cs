namespace EdgeTune.Formats.Hub;

/// <summary>
/// Which files of a dataset repository hold the rows of a split. Data files are <c>.parquet</c>, <c>.jsonl</c>,
/// <c>.ndjson</c>, <c>.json</c>, <c>.csv</c> and <c>.tsv</c> files (Parquet only, when there are any: repos that hold
/// both keep the same rows twice). A file belongs to split S when a folder on its path is S (or <c>partial-S</c>, as in
/// the Hub's Parquet conversion, <c>{config}/{split}/0000.parquet</c>) or its name is S or starts with <c>S-</c>,
/// <c>S_</c> or <c>S.</c> (<c>data/train-00000-of-00001.parquet</c>, <c>train.jsonl</c>). With a config, only the files
/// under the folder of that name count. Without a split, <c>train</c> is used, or every data file when no file names
/// a split.
/// </summary>
public static class HubDatasetFiles
{
    /// <summary>The revision where the Hub keeps its automatic Parquet conversion of a dataset.</summary>
    public const string ParquetConversionRevision = "refs/convert/parquet";

    private static readonly string[] DataExtensions = [".parquet", ".jsonl", ".ndjson", ".json", ".csv", ".tsv"];
    private static readonly string[] KnownSplits = ["train", "test", "validation", "valid", "dev", "eval"];
    private static readonly HashSet<string> MetadataFiles = new(StringComparer.OrdinalIgnoreCase)
    {
        "dataset_info.json", "dataset_infos.json", "dataset_dict.json", "state.json", "config.json", "package.json",
    };

    /// <summary>The files of <paramref name="files"/> that can hold rows.</summary>
    public static IReadOnlyList<string> DataFiles(IEnumerable<string> files)
    {
        var data = files.Where(f =>
        {
            string name = f[(f.LastIndexOf('/') + 1)..];
            return DataExtensions.Any(e => name.EndsWith(e, StringComparison.OrdinalIgnoreCase))
                && !MetadataFiles.Contains(name) && !f.Split('/').Any(p => p.StartsWith('.'));
        }).Order(StringComparer.Ordinal).ToList();
        return data.Any(IsParquet) ? data.Where(IsParquet).ToList() : data;
    }

    /// <summary>The data files of the reference's config and split, sorted.</summary>
    /// <exception cref="HubException">NotFound: no data file, no such config or split, or several configs hold the split.</exception>
    public static IReadOnlyList<string> Select(IReadOnlyList<string> dataFiles, HubDatasetReference reference)
    {
        ArgumentNullException.ThrowIfNull(dataFiles);
        ArgumentNullException.ThrowIfNull(reference);
        var files = DataFiles(dataFiles);
        if (files.Count == 0)
            throw new HubException(HubErrorKind.NotFound, $"{reference}: the dataset has no data files (.parquet, .jsonl, .json, .csv)");
        if (reference.Config is { } config)
        {
            var inConfig = files.Where(f => f.StartsWith(config + "/", StringComparison.Ordinal)).ToList();
            if (inConfig.Count == 0)
                throw new HubException(HubErrorKind.NotFound,
                    $"{reference}: no config '{config}' (folders: {string.Join(", ", files.Where(f => f.Contains('/')).Select(f => f[..f.IndexOf('/')]).Distinct().Take(20))})");
            files = inConfig;
        }
        string split = reference.Split ?? "train";
        var matches = files.Where(f => InSplit(f, split)).ToList();
        if (matches.Count == 0)
        {
            if (reference.Split is null && !files.Any(f => KnownSplits.Any(s => InSplit(f, s)))) return files;
            throw new HubException(HubErrorKind.NotFound,
                $"{reference}: no data files of split '{split}' (data files: {string.Join(", ", files.Take(20))}{(files.Count > 20 ? ", ..." : "")})");
        }
        if (reference.Config is null)
        {
            // The Parquet conversion keeps each config in its own folder: {config}/{split}/...; take "default" or ask.
            var configs = matches.Where(f => f.Split('/') is { Length: >= 3 } p && (p[1] == split || p[1] == "partial-" + split))
                .Select(f => f[..f.IndexOf('/')]).Distinct(StringComparer.Ordinal).ToList();
            if (configs.Count > 1)
            {
                if (!configs.Contains("default"))
                    throw new HubException(HubErrorKind.NotFound,
                        $"{reference}: several configs hold split '{split}' ({string.Join(", ", configs)}); name one: hf://datasets/{reference.Repo.RepoId}/CONFIG/{split}");
                matches = matches.Where(f => f.StartsWith("default/", StringComparison.Ordinal)).ToList();
            }
        }
        return matches;
    }

    private static bool IsParquet(string f) => f.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase);

    private static bool InSplit(string path, string split)
    {
        string[] parts = path.Split('/');
        for (int i = 0; i < parts.Length - 1; i++)
            if (parts[i] == split || parts[i] == "partial-" + split) return true;
        string name = parts[^1];
        return name.StartsWith(split, StringComparison.Ordinal) && name.Length > split.Length && name[split.Length] is '-' or '_' or '.';
    }
}
