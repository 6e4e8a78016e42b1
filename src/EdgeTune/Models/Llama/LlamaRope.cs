using EdgeTune.Formats;
using EdgeTune.Tensors;

namespace EdgeTune.Models.Llama;

/// <summary>Rotary inverse frequencies of a config (rope_theta, then rope_scaling such as llama3 or linear).</summary>
public static class LlamaRope
{
    public static double[] InverseFrequencies(HfConfig config)
    {
        double[] f = RopeTable.InverseFrequencies(config.HeadDim, config.RopeTheta);
        config.RopeScaling?.Apply(f);
        return f;
    }
}
