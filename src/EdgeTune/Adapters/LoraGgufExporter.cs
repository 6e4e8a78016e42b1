using EdgeTune.Adapters.Internal;
using EdgeTune.Formats;
using EdgeTune.Tensors;

namespace EdgeTune.Adapters;

/// <summary>
/// Writes a LoRA adapter as a llama.cpp LoRA GGUF (what <c>convert_lora_to_gguf.py</c> produces):
/// <c>general.type = adapter</c>, <c>adapter.type = lora</c>, <c>adapter.lora.alpha</c>, and per adapted weight
/// <c>{gguf name}.lora_a</c> (A [r, in], GGML ne = [in, r]) and <c>{gguf name}.lora_b</c> (B [out, r]) in F32.
/// </summary>
/// <remarks>llama.cpp scales each B·A by <c>adapter.lora.alpha</c> / r, with one alpha for the whole file and r read from
/// each tensor's shape. The alpha written is the most common s·r over the modules (s·r = α for plain LoRA, α·√r for
/// rsLoRA); a module whose own s·r differs (per-module ranks or alphas, PEFT's rank_pattern/alpha_pattern, or rsLoRA with
/// several ranks) has the ratio folded into its lora_b, so every module keeps its own scale. q/k lora_b rows are permuted
/// into the row order llama.cpp uses for the architecture (interleaved for llama), as the base model's export does.
/// DoRA adapters and adapters that replace the embedding or head (PEFT modules_to_save) are refused (llama.cpp LoRA
/// files can express neither): merge them and export the merged model instead.</remarks>
public static class LoraGgufExporter
{
    /// <summary>Exports <paramref name="adapter"/>, which must be applied to <paramref name="model"/>.</summary>
    public static void Export(LoraAdapter adapter, Models.DecoderModel model, string path, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(adapter);
        if (!ReferenceEquals(adapter.Model, model))
            throw new ArgumentException($"LoraGgufExporter: adapter '{adapter.Name}' belongs to another model", nameof(model));
        Export(adapter, path, name);
    }

    /// <summary>Exports <paramref name="adapter"/> for its model's architecture to the GGUF file <paramref name="path"/> (written atomically).</summary>
    /// <exception cref="NotSupportedException">The adapter is DoRA or replaces whole modules (the message says which).</exception>
    public static void Export(LoraAdapter adapter, string path, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(adapter);
        ArgumentException.ThrowIfNullOrEmpty(path);
        var model = adapter.Model;
        if (adapter.Modules.Any(m => m.IsDora))
            throw new NotSupportedException($"LoraGgufExporter: adapter '{adapter.Name}' is DoRA, which llama.cpp LoRA files cannot express; merge it into the model and export that");
        if (adapter.SavedModules.Count > 0)
            throw new NotSupportedException($"LoraGgufExporter: adapter '{adapter.Name}' replaces {string.Join(" and ", adapter.SavedModules)} whole (PEFT modules_to_save), " +
                "which llama.cpp LoRA files cannot express; merge it into the model and export that");
        if (adapter.Modules.Count == 0) throw new InvalidOperationException($"LoraGgufExporter: adapter '{adapter.Name}' has no modules");
        string arch = model.Family.GgufArchitecture(model.Config);
        RopeStyle target = GgufLlama.RopeLayoutOf(arch);
        float alpha = FileAlpha(adapter.Modules);
        var meta = new List<KeyValuePair<string, GgufValue>>
        {
            new("general.architecture", arch),
            new("general.type", "adapter"),
            new("general.name", name ?? adapter.Name),
            new("adapter.type", "lora"),
            new("adapter.lora.alpha", alpha),
        };
        var owned = new List<Tensor>();
        try
        {
            var tensors = new List<KeyValuePair<string, Tensor>>();
            foreach (var m in adapter.Modules)
            {
                string g = model.Family.GgufNames.ToGguf(m.LayerName + ".weight")
                    ?? throw new CheckpointFormatException(path, "has no llama.cpp name", m.LayerName + ".weight");
                Tensor a = F32(m.A.Value, owned), b = F32(m.B.Value, owned);
                // llama.cpp applies alpha / r; this module needs s = (s·r) / r.
                if ((float)(m.Scale * m.Rank) != alpha)
                {
                    double fold = m.Scale * m.Rank / alpha;
                    var scaled = b.Clone();
                    System.Numerics.Tensors.TensorPrimitives.Multiply(scaled.Span<float>(), (float)fold, scaled.Span<float>());
                    owned.Add(scaled);
                    b = scaled;
                }
                if (PeftLayout.Convert(model, m.LayerName, b, model.RopeStyle, target) is { } pb)
                {
                    owned.Add(pb);
                    b = pb;
                }
                tensors.Add(new(g + ".lora_a", a));
                tensors.Add(new(g + ".lora_b", b));
            }
            GgufWriter.Write(path, meta, tensors);
        }
        finally
        {
            foreach (var t in owned) t.Dispose();
        }
    }

    /// <summary>The alpha for the file: the most common s·r (first in model order on ties), so that as few lora_b as
    /// possible are rescaled. A zero alpha would make llama.cpp skip scaling altogether, so zero (all scales zero)
    /// becomes 1 with every lora_b zeroed.</summary>
    private static float FileAlpha(IReadOnlyList<LoraModule> modules)
    {
        var counts = new Dictionary<float, int>();
        var order = new List<float>();
        foreach (var m in modules)
        {
            float sr = (float)(m.Scale * m.Rank);
            if (sr == 0) continue;
            if (counts.TryAdd(sr, 1)) order.Add(sr); else counts[sr]++;
        }
        if (order.Count == 0) return 1f;
        float best = order[0];
        foreach (float v in order) if (counts[v] > counts[best]) best = v;
        return best;
    }

    private static Tensor F32(Tensor t, List<Tensor> owned)
    {
        if (t.DType == DType.F32) return t;
        var c = t.To(DType.F32);
        owned.Add(c);
        return c;
    }
}
