using EdgeTune.Formats;
using EdgeTune.Tensors;

namespace EdgeTune.Models;

/// <summary>
/// A model family as data: which <c>model_type</c>s it reads, how to build one block (written once, see
/// <see cref="DecoderLayer"/>), its rotary frequencies, embedding scale and logit soft-capping, and its names
/// (HF ↔ GGUF). Everything else (embedding, stack, final norm, head, loading, KV cache, the tape loss) is
/// shared by <see cref="DecoderModel"/>.
/// </summary>
public abstract class DecoderFamily
{
    /// <summary>The family's name (its folder under Models/).</summary>
    public abstract string Name { get; }

    /// <summary>config.json <c>model_type</c> values (and GGUF architectures) this family reads.</summary>
    public abstract IReadOnlyList<string> ModelTypes { get; }

    /// <summary>Builds block <paramref name="index"/>; weights come from <paramref name="weights"/> under full HF names.</summary>
    public abstract DecoderLayer CreateLayer(IDecoderContext context, WeightBinder weights, int index);

    /// <summary>Checks family-specific fields of a config; errors name the field.</summary>
    public virtual void Validate(HfConfig config, string source) { }

    /// <summary>Positions the model runs here: <c>max_position_embeddings</c> unless the family's rope supports less.</summary>
    public virtual int MaxPositions(HfConfig config) => config.MaxPositionEmbeddings;

    /// <summary>Factor applied to embedding rows (Gemma: √hidden).</summary>
    public virtual double EmbeddingScale(HfConfig config) => 1.0;

    /// <summary>c in logits = c·tanh(logits/c), or null (Gemma 2 style final soft-capping).</summary>
    public virtual double? FinalLogitSoftcap(HfConfig config) => null;

    /// <summary>HF stores norm weights as w where the model multiplies by <c>w + NormOffset</c> (Gemma: 1). EdgeTune
    /// keeps the multiplier itself in memory (as llama.cpp's GGUF does), adding the offset when reading HF files and
    /// subtracting it when writing them.</summary>
    public virtual float NormOffset => 0f;

    /// <summary>True for a norm weight whose HF value is stored offset by <see cref="NormOffset"/>.</summary>
    public virtual bool IsNormWeight(string hfName) => hfName.EndsWith("norm.weight", StringComparison.Ordinal);

    /// <summary>Rotary inverse frequencies (one per pair) and the factor on cos/sin for <paramref name="kind"/>
    /// (0 = global layers, 1 = local sliding-window layers).</summary>
    public virtual (double[] InverseFrequencies, double AttentionFactor) Rope(HfConfig config, int kind)
    {
        double[] f = RopeTable.InverseFrequencies(config.HeadDim, config.RopeTheta);
        config.RopeScaling?.Apply(f);
        return (f, 1.0);
    }

    /// <summary>HF ↔ GGUF tensor names of this family.</summary>
    public virtual GgufNameMap GgufNames => GgufNameMap.Llama;

    /// <summary>The GGUF <c>general.architecture</c> llama.cpp runs this config as.</summary>
    public virtual string GgufArchitecture(HfConfig config) => config.ModelType;

    /// <summary>The config a GGUF file's metadata implies (family fields added to the common ones).</summary>
    public virtual HfConfig FromGguf(GgufFile file, HfConfig common) => common;

    /// <summary>The <c>general.*</c> and <c>{arch}.*</c> metadata llama.cpp expects for a config.</summary>
    public virtual List<KeyValuePair<string, GgufValue>> GgufMetadata(HfConfig config) => GgufLlama.Metadata(config, architecture: GgufArchitecture(config));

    /// <summary>Extra tensors a GGUF of this family carries that are not parameters (Phi-3's rope factors), by GGUF name.</summary>
    public virtual IEnumerable<KeyValuePair<string, Tensor>> GgufExtraTensors(HfConfig config) => [];

    /// <summary>The HF <c>architectures</c> entry for a config that has none.</summary>
    public virtual string DefaultArchitecture(HfConfig config) => config.ModelType switch
    {
        "qwen2" => "Qwen2ForCausalLM",
        "mistral" => "MistralForCausalLM",
        _ => "LlamaForCausalLM",
    };
}
