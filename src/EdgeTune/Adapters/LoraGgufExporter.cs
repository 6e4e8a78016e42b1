using EdgeTune.Adapters.Internal;
using EdgeTune.Formats;
using EdgeTune.Tensors;

namespace EdgeTune.Adapters;

/// <summary>
/// Writes a LoRA adapter as a llama.cpp LoRA GGUF (what <c>convert_lora_to_gguf.py</c> produces):
/// <c>general.type = adapter</c>, <c>adapter.type = lora</c>, <c>adapter.lora.alpha</c>, and per adapted weight
/// <c>{gguf name}.lora_a</c> (A [r, in], GGML ne = [in, r]) and <c>{gguf name}.lora_b</c> (B [out, r]) in F32.
/// </summary>
/// <remarks>llama.cpp scales B·A by alpha / r (r read from the tensors), so the alpha written is s·r: the adapter's
/// own scale s whether it is α/r or rsLoRA's α/√r. q/k lora_b rows are permuted into the row order llama.cpp uses for
/// the architecture (interleaved for llama), as the base model's export does. DoRA adapters are refused
/// (llama.cpp has no DoRA): merge them and export the merged model instead.</remarks>
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
    public static void Export(LoraAdapter adapter, string path, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(adapter);
        ArgumentException.ThrowIfNullOrEmpty(path);
        var model = adapter.Model;
        if (adapter.Modules.Any(m => m.IsDora))
            throw new NotSupportedException($"LoraGgufExporter: adapter '{adapter.Name}' is DoRA, which llama.cpp LoRA files cannot express; merge it into the model and export that");
        string arch = model.Family.GgufArchitecture(model.Config);
        RopeStyle target = GgufLlama.RopeLayoutOf(arch);
        int rank = adapter.Config.Rank;
        var meta = new List<KeyValuePair<string, GgufValue>>
        {
            new("general.architecture", arch),
            new("general.type", "adapter"),
            new("general.name", name ?? adapter.Name),
            new("adapter.type", "lora"),
            new("adapter.lora.alpha", (float)(adapter.Modules[0].Scale * rank)),
        };
        var owned = new List<Tensor>();
        try
        {
            var tensors = new List<KeyValuePair<string, Tensor>>();
            foreach (var m in adapter.Modules)
            {
                if (m.Rank != rank) throw new InvalidOperationException($"LoraGgufExporter: layer '{m.LayerName}' has rank {m.Rank}, not the adapter's {rank}");
                string g = model.Family.GgufNames.ToGguf(m.LayerName + ".weight")
                    ?? throw new CheckpointFormatException(path, "has no llama.cpp name", m.LayerName + ".weight");
                Tensor a = F32(m.A.Value, owned), b = F32(m.B.Value, owned);
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

    private static Tensor F32(Tensor t, List<Tensor> owned)
    {
        if (t.DType == DType.F32) return t;
        var c = t.To(DType.F32);
        owned.Add(c);
        return c;
    }
}
