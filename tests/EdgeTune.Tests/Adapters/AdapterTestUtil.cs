using EdgeTune.Adapters;
using EdgeTune.Autograd;
using EdgeTune.Formats;
using EdgeTune.Models;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Adapters;

internal static class AdapterTestUtil
{
    /// <summary>GQA (4 heads over 2 KV heads of 6), odd FFN and vocab.</summary>
    public static HfConfig Config(string type = "llama", bool bias = false) => Models.LlamaModelTests.SmallConfig(type, bias, tied: false);

    public static readonly int[] Prompt = [1, 5, 9, 52, 0, 17, 33];

    public static float[] Logits(DecoderModel m, int[] ids) => Tests.Formats.Export.ExportTestUtil.Logits(m, ids);

    public static double MaxAbsDiff(float[] a, float[] b) => Tests.Formats.Export.ExportTestUtil.MaxAbsDiff(a, b);

    /// <summary>Fills every B (and perturbs DoRA m) with N(0, std) so the adapter changes the output.</summary>
    public static void RandomizeB(LoraAdapter adapter, ulong seed, double std = 0.2)
    {
        var rng = new Rng(seed);
        foreach (var m in adapter.Modules)
        {
            Fill(m.B, rng, std, add: false);
            if (m.Magnitude is { } g) Fill(g, rng, 0.1, add: true);
        }
    }

    private static void Fill(Parameter p, Rng rng, double std, bool add)
    {
        var t = p.Value;
        if (t.DType == DType.F64)
        {
            var s = t.Span<double>();
            for (int i = 0; i < s.Length; i++) s[i] = (add ? s[i] : 0) + std * rng.NextGaussian();
        }
        else
        {
            var s = t.Span<float>();
            for (int i = 0; i < s.Length; i++) s[i] = (add ? s[i] : 0) + (float)(std * rng.NextGaussian());
        }
    }

    /// <summary>A half-split model with the same function as <paramref name="interleaved"/> (q/k rows permuted).</summary>
    public static DecoderModel HalfSplitTwin(DecoderModel interleaved)
    {
        var twin = DecoderModel.CreateRandom(interleaved.Config, 999, RopeStyle.HalfSplit);
        foreach (var p in interleaved.Parameters)
        {
            using var t = GgufTensorNames.IsRopeProjection(p.Name, out bool isKey)
                ? RopePermutation.Convert(p.Value, isKey ? interleaved.Config.NumKeyValueHeads : interleaved.Config.NumAttentionHeads, RopeStyle.Interleaved, RopeStyle.HalfSplit)
                : p.Value.Clone();
            EdgeTune.Autograd.Internal.TensorMath.CopyBytes(t, twin.Parameters[p.Name].Value);
        }
        return twin;
    }
}
