using EdgeTune.Formats;
using EdgeTune.Models;
using EdgeTune.Tensors;

namespace EdgeTune.Adapters.Internal;

/// <summary>q/k row order of adapter tensors: PEFT files are always in HF's half-split layout; a model running
/// interleaved RoPE (llama2.c, GGUF) keeps its q/k lora_B rows (and DoRA magnitudes) interleaved in memory.</summary>
internal static class PeftLayout
{
    /// <summary>Heads of the q (attention heads) or k (KV heads) projection, or 0 when <paramref name="layerName"/> is neither.</summary>
    public static int RopeHeads(DecoderModel model, string layerName) =>
        GgufTensorNames.IsRopeProjection(layerName + ".weight", out bool isKey)
            ? isKey ? model.Config.NumKeyValueHeads : model.Config.NumAttentionHeads
            : 0;

    /// <summary>A B or magnitude tensor converted from <paramref name="from"/> to <paramref name="to"/> row order (a new tensor),
    /// or null when no permutation applies.</summary>
    public static Tensor? Convert(DecoderModel model, string layerName, Tensor rows, RopeStyle from, RopeStyle to)
    {
        int heads = RopeHeads(model, layerName);
        return heads == 0 || from == to ? null : RopePermutation.Convert(rows, heads, from, to);
    }
}
