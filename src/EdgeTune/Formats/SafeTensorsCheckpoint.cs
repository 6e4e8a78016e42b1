using System.Text.Json;
using EdgeTune.Tensors;

namespace EdgeTune.Formats;

/// <summary>
/// A Hugging Face safetensors checkpoint, single-file or sharded: opened from a
/// <c>.safetensors</c> file, a <c>model.safetensors.index.json</c> (whose <c>weight_map</c> names the
/// shard of each tensor), or a folder holding either. Every shard is memory-mapped once.
/// </summary>
public sealed class SafeTensorsCheckpoint : ICheckpointReader
{
    public const string IndexFileName = "model.safetensors.index.json";
    public const string SingleFileName = "model.safetensors";

    private readonly List<SafeTensorsFile> _shards;
    private readonly Dictionary<string, SafeTensorsFile> _owner;
    private readonly List<TensorInfo> _tensors;

    private SafeTensorsCheckpoint(string source, List<SafeTensorsFile> shards, Dictionary<string, SafeTensorsFile> owner, List<TensorInfo> tensors)
    {
        Source = source;
        _shards = shards;
        _owner = owner;
        _tensors = tensors;
    }

    public string Source { get; }
    public RopeStyle RopeLayout => RopeStyle.HalfSplit;
    public IReadOnlyList<TensorInfo> Tensors => _tensors;

    /// <summary>The opened shard files (one for a single-file checkpoint).</summary>
    public IReadOnlyList<SafeTensorsFile> Shards => _shards;

    /// <summary>The first shard's <c>__metadata__</c>.</summary>
    public IReadOnlyDictionary<string, string> Metadata => _shards.Count > 0 ? _shards[0].Metadata : new Dictionary<string, string>();

    public bool Contains(string name) => _owner.ContainsKey(name);

    public Tensor GetTensor(string name) =>
        _owner.TryGetValue(name, out var f)
            ? f.GetTensor(name)
            : throw new KeyNotFoundException($"{Source}: no tensor named '{name}' ({_tensors.Count} tensors in the checkpoint)");

    public void Dispose()
    {
        foreach (var s in _shards) s.Dispose();
    }

    /// <summary>Opens a safetensors file, an index file, or a folder holding <c>model.safetensors.index.json</c> or <c>model.safetensors</c>.</summary>
    public static SafeTensorsCheckpoint Open(string path)
    {
        if (Directory.Exists(path))
        {
            string index = Path.Combine(path, IndexFileName), single = Path.Combine(path, SingleFileName);
            if (File.Exists(index)) return OpenIndex(index);
            if (File.Exists(single)) return OpenIndex(null, single);
            throw new FileNotFoundException($"folder '{path}' holds neither {IndexFileName} nor {SingleFileName}", path);
        }
        if (!File.Exists(path)) throw new FileNotFoundException($"checkpoint '{path}' does not exist", path);
        return path.EndsWith(".index.json", StringComparison.OrdinalIgnoreCase) ? OpenIndex(path) : OpenIndex(null, path);
    }

    /// <summary>A single-file checkpoint over an already opened file (e.g. one decrypted into memory), which it then owns.</summary>
    public static SafeTensorsCheckpoint FromFile(SafeTensorsFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        return new SafeTensorsCheckpoint(file.Source, [file], file.Tensors.ToDictionary(t => t.Name, _ => file, StringComparer.Ordinal), [.. file.Tensors]);
    }

    private static SafeTensorsCheckpoint OpenIndex(string? indexPath, string? singlePath = null)
    {
        if (indexPath is null)
        {
            var f = SafeTensorsFile.Open(singlePath!);
            return new SafeTensorsCheckpoint(singlePath!, [f], f.Tensors.ToDictionary(t => t.Name, _ => f, StringComparer.Ordinal), [.. f.Tensors]);
        }

        var weightMap = ReadWeightMap(indexPath);
        string dir = Path.GetDirectoryName(Path.GetFullPath(indexPath)) ?? ".";
        var shards = new List<SafeTensorsFile>();
        try
        {
            var byFile = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
            foreach (string shardName in weightMap.Values.Distinct(StringComparer.Ordinal))
            {
                string shardPath = Path.Combine(dir, shardName);
                if (!File.Exists(shardPath))
                    throw new CheckpointFormatException(indexPath, $"shard '{shardName}' named in weight_map does not exist at {shardPath}");
                var f = SafeTensorsFile.Open(shardPath);
                shards.Add(f);
                byFile.Add(shardName, f);
            }
            var owner = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
            var tensors = new List<TensorInfo>();
            foreach (var (name, shardName) in weightMap)
            {
                var f = byFile[shardName];
                if (!f.Contains(name))
                    throw new CheckpointFormatException(indexPath, $"weight_map places it in '{shardName}', which has no such tensor", name);
                owner.Add(name, f);
            }
            // File order within each shard, shards in weight_map order.
            foreach (var f in shards)
                foreach (var t in f.Tensors)
                {
                    if (!owner.TryGetValue(t.Name, out var o)) { owner.Add(t.Name, f); tensors.Add(t); }
                    else if (o == f) tensors.Add(t);
                    else throw new CheckpointFormatException(indexPath, $"appears in both '{o.Source}' and '{f.Source}'", t.Name);
                }
            return new SafeTensorsCheckpoint(indexPath, shards, owner, tensors);
        }
        catch
        {
            foreach (var s in shards) s.Dispose();
            throw;
        }
    }

    private static Dictionary<string, string> ReadWeightMap(string indexPath)
    {
        byte[] bytes = File.ReadAllBytes(indexPath);
        if (!System.Text.Unicode.Utf8.IsValid(bytes))
            throw new CheckpointFormatException(indexPath, "index is not valid UTF-8");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(bytes); }
        catch (JsonException e) { throw new CheckpointFormatException(indexPath, $"index is not valid JSON: {e.Message}", inner: e); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out var wm) || wm.ValueKind != JsonValueKind.Object)
                throw new CheckpointFormatException(indexPath, "index has no 'weight_map' object");
            var map = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var p in wm.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String)
                    throw new CheckpointFormatException(indexPath, $"weight_map value should be a shard file name, found {p.Value.ValueKind}", p.Name);
                string shard = p.Value.GetString()!;
                if (shard.Length == 0 || Path.IsPathRooted(shard) || shard.Contains("..", StringComparison.Ordinal))
                    throw new CheckpointFormatException(indexPath, $"weight_map shard name '{shard}' must be a file beside the index", p.Name);
                if (!map.TryAdd(p.Name, shard))
                    throw new CheckpointFormatException(indexPath, "the name appears twice in weight_map", p.Name);
            }
            return map;
        }
    }
}
