using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Formats;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Text.Datasets;

namespace EdgeTune.Tests.Compression.Distillation;

/// <summary>Tiny random Llama models and token sequences shared by the distillation tests.</summary>
internal static class DistillationFixtures
{
    public static HfConfig Config(int vocab = 32, int hidden = 16, int layers = 2) => new()
    {
        ModelType = "llama",
        HiddenSize = hidden,
        IntermediateSize = 24,
        NumHiddenLayers = layers,
        NumAttentionHeads = 4,
        NumKeyValueHeads = 2,
        HeadDim = hidden / 4,
        VocabSize = vocab,
        MaxPositionEmbeddings = 32,
        RmsNormEps = 1e-5,
        TieWordEmbeddings = true,
    };

    /// <summary>A teacher with larger weights than the default init, so its predictions are far from uniform.</summary>
    public static DecoderModel Teacher(ulong seed = 11, int vocab = 32) => DecoderModel.CreateRandom(Config(vocab), seed, std: 0.5f);

    public static List<int[]> Sequences(int count, int time, int vocab = 32, ulong seed = 5)
    {
        var rng = new Rng(seed);
        var list = new List<int[]>();
        for (int i = 0; i < count; i++)
        {
            var s = new int[time];
            for (int t = 0; t < time; t++) s[t] = (int)(rng.NextDouble() * vocab);
            list.Add(s);
        }
        return list;
    }

    /// <summary>Next-token training sequences: tokens s[0..T−1], targets s[1..T−1] then ignored.</summary>
    public static List<TrainingSequence> Training(IEnumerable<int[]> sequences) => sequences
        .Select(s => new TrainingSequence(s, [.. s.Skip(1), CrossEntropy.IgnoreIndex], 1)).ToList();
}
