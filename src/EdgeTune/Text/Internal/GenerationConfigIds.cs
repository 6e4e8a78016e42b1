using System.Text.Json;

namespace EdgeTune.Text.Internal;

/// <summary>
/// The token ids of a Hugging Face <c>generation_config.json</c> (bos_token_id, eos_token_id as one id or a list,
/// pad_token_id). The loaders use them only where tokenizer_config.json names no such token: Qwen3's
/// tokenizer_config has <c>"bos_token": null</c>, while its generation config gives bos_token_id 151643
/// (&lt;|endoftext|&gt;, the id llama.cpp also uses as BOS for Qwen models).
/// </summary>
internal sealed record GenerationConfigIds(int? Bos, IReadOnlyList<int> Eos, int? Pad)
{
    /// <summary>generation_config.json in the folder of <paramref name="file"/>, or null when there is none.</summary>
    public static GenerationConfigIds? LoadBeside(string file)
    {
        string path = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file))!, "generation_config.json");
        return File.Exists(path) ? Load(path) : null;
    }

    public static GenerationConfigIds Load(string path)
    {
        using var doc = TokenizerConfig.ReadJson(path);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: expected a JSON object at the top level");
        var eos = new List<int>();
        if (root.TryGetProperty("eos_token_id", out var e))
        {
            if (e.ValueKind == JsonValueKind.Array)
            {
                int i = 0;
                foreach (var x in e.EnumerateArray())
                {
                    eos.Add(x.ValueKind == JsonValueKind.Number && x.TryGetInt32(out int id) && id >= 0 ? id
                        : throw new InvalidDataException($"{path}: eos_token_id[{i}] must be a non-negative integer id, got {x.ValueKind}"));
                    i++;
                }
            }
            else if (Id(root, "eos_token_id", path) is int one) eos.Add(one);
        }
        return new GenerationConfigIds(Id(root, "bos_token_id", path), eos, Id(root, "pad_token_id", path));
    }

    private static int? Id(JsonElement root, string name, string path)
    {
        if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int id) && id >= 0) return id;
        throw new InvalidDataException($"{path}: {name} must be a non-negative integer id or null, got {v.ValueKind} {v.GetRawText()}");
    }
}
