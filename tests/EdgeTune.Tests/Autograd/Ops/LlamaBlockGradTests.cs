using EdgeTune.Autograd;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Autograd.Ops;

/// <summary>
/// A one-layer Llama-style transformer recorded on the tape — embedding → RmsNorm → q/k/v Linear →
/// RoPE on q and k → causal GQA attention (Hq = 4, Hkv = 2) → o-proj → residual → RmsNorm →
/// gate/up Linear → SwiGlu → down Linear → residual → final RmsNorm → fused LM head with the
/// embedding tied as its weight → cross-entropy. Every parameter gradient must match central
/// differences in double: the proof that the engine can train a transformer.
/// </summary>
public class LlamaBlockGradTests
{
    private const int B = 2, T = 5, V = 11, Hq = 4, Hkv = 2, D = 4, C = Hq * D, F = 12;
    private static readonly RopeTable Table = new(T, D, theta: 100);
    private static readonly int[] Ids = [3, 10, 0, 7, 7, 1, 2, 9, 4, 0];
    private static readonly int[] Targets = [10, 0, 7, CrossEntropy.IgnoreIndex, 1, 2, 9, 4, 0, 5];

    private static Parameter[] Model(Rng rng) =>
    [
        GradCheck.Param("embed", [V, C], rng),
        OpCheck.Around("attn_norm", C, rng),
        GradCheck.Param("wq", [Hq * D, C], rng, scale: 0.5),
        GradCheck.Param("wk", [Hkv * D, C], rng, scale: 0.5),
        GradCheck.Param("wv", [Hkv * D, C], rng, scale: 0.5),
        GradCheck.Param("wo", [C, Hq * D], rng, scale: 0.5),
        OpCheck.Around("ffn_norm", C, rng),
        GradCheck.Param("w_gate", [F, C], rng, scale: 0.5),
        GradCheck.Param("w_up", [F, C], rng, scale: 0.5),
        GradCheck.Param("w_down", [C, F], rng, scale: 0.5),
        OpCheck.Around("final_norm", C, rng),
    ];

    /// <summary>The forward pass; p in <see cref="Model"/>'s order. Returns the mean loss.</summary>
    private static Variable Forward(Tape t, Parameter[] p)
    {
        var x = t.Embedding(p[0], Ids);                                        // [B·T, C]
        var h = t.RmsNorm(x, p[1], 1e-5);
        var q = t.Rope(t.Reshape(t.Linear(h, p[2]), B, T, Hq, D), Table, RopeStyle.HalfSplit);
        var k = t.Rope(t.Reshape(t.Linear(h, p[3]), B, T, Hkv, D), Table, RopeStyle.HalfSplit);
        var v = t.Linear(h, p[4]);                                             // [B·T, Hkv·D]
        var a = t.Reshape(t.Attention(q, k, v, B, T, Hq, Hkv, D), B * T, Hq * D);
        x = t.Add(x, t.Linear(a, p[5]));
        h = t.RmsNorm(x, p[6], 1e-5);
        var m = t.SwiGlu(t.Linear(h, p[7]), t.Linear(h, p[8]));               // [B·T, F]
        x = t.Add(x, t.Linear(m, p[9]));
        return t.LmHeadCrossEntropy(t.RmsNorm(x, p[10], 1e-5), p[0], Targets, chunk: 4);
    }

    /// <summary>Runs <paramref name="test"/> on a freshly seeded model and disposes it.</summary>
    private static void WithModel(ulong seed, Action<Parameter[]> test)
    {
        var ps = Model(new Rng(seed));
        try { test(ps); }
        finally { foreach (var p in ps) p.Dispose(); }
    }

    [Fact]
    public void EveryParameterGradientMatchesFiniteDifferences()
    {
        WithModel(61, ps =>
        {
            int n = GradCheck.Check(ps, t => Forward(t, ps), rtol: 1e-5, atol: 1e-8);
            Assert.Equal(ps.Sum(p => (int)p.ElementCount), n);
            Assert.All(ps, p => Assert.Contains(p.Grad!.ReadOnlySpan<double>().ToArray(), g => g != 0));
        });
    }

    [Fact]
    public void F32BlockMatchesF64()
    {
        WithModel(62, ps => OpCheck.F32MatchesF64(ps, Forward, rtol: 2e-4, atol: 1e-6));
    }

    [Fact]
    public void FrozenBaseWithTrainableNormsOnlyTrainsNorms()
    {
        WithModel(63, ps =>
        {
            foreach (var p in ps) p.Trainable = p.Name.EndsWith("norm", StringComparison.Ordinal);
            int n = GradCheck.Check(ps, t => Forward(t, ps), rtol: 1e-5, atol: 1e-8);
            Assert.Equal(3 * C, n);
        });
    }
}
