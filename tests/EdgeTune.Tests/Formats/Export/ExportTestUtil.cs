using EdgeTune.Formats;
using EdgeTune.Models;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Formats.Export;

/// <summary>Small real-shaped configs and logits helpers shared by the export tests.</summary>
internal static class ExportTestUtil
{
    /// <summary>GQA (6 heads over 2 kv heads of 8), odd FFN and vocab sizes.</summary>
    public static HfConfig Config(string modelType = "llama", bool tied = false, bool bias = false, int hidden = 48, int heads = 6, int kvHeads = 2) => new()
    {
        ModelType = modelType,
        HiddenSize = hidden,
        IntermediateSize = 37,
        NumHiddenLayers = 2,
        NumAttentionHeads = heads,
        NumKeyValueHeads = kvHeads,
        HeadDim = hidden / heads,
        VocabSize = 67,
        RmsNormEps = 1e-5,
        MaxPositionEmbeddings = 64,
        TieWordEmbeddings = tied,
        AttentionBias = bias,
        OutputBias = bias && modelType != "qwen2", // as HfConfig.Parse reads it back: HF Llama's attention_bias covers o_proj
        BosTokenId = 1,
        EosTokenIds = [2],
    };

    /// <summary>Random model with non-zero biases and non-unit norms, so that a wrong permutation or a dropped tensor shows.</summary>
    public static DecoderModel Random(HfConfig cfg, ulong seed, RopeStyle style = RopeStyle.HalfSplit)
    {
        var m = DecoderModel.CreateRandom(cfg, seed, style, std: 0.2f);
        var rng = new EdgeTune.Tensors.Rng(seed + 1);
        foreach (var p in m.Parameters)
            if (p.Value.Rank == 1)
            {
                var s = p.Value.Span<float>();
                for (int i = 0; i < s.Length; i++) s[i] += 0.3f * (rng.NextFloat() - 0.5f);
            }
        return m;
    }

    public static readonly int[] Prompt = [1, 5, 60, 33, 7, 0, 66, 12, 9];

    /// <summary>Logits [T, V] of the whole prompt in one prefill.</summary>
    public static float[] Logits(DecoderModel m, int[] ids)
    {
        using var cache = m.CreateCache(ids.Length);
        var logits = new float[ids.Length * m.VocabSize];
        m.Forward(ids, cache, logits);
        return logits;
    }

    public static double MaxAbsDiff(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        double d = 0;
        for (int i = 0; i < a.Length; i++) d = Math.Max(d, Math.Abs((double)a[i] - b[i]));
        return d;
    }

    public static DecoderModel LoadBack(string path)
    {
        var reader = CheckpointReader.Open(path);
        var cfg = Directory.Exists(path) ? HfConfig.Load(Path.Combine(path, "config.json")) : CheckpointReader.ConfigFor(reader);
        return DecoderModel.Load(reader, cfg);
    }
}
