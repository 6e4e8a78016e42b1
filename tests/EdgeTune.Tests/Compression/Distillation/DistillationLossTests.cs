using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Autograd;
using EdgeTune.Compression.Distillation;
using EdgeTune.Tensors;
using EdgeTune.Tests.Autograd.Ops;

namespace EdgeTune.Tests.Compression.Distillation;

/// <summary>The fused LM-head distillation loss: gradient checks in double for both KL directions, both teacher
/// forms, with and without the cross-entropy mix; F32 (row-chunked) against the F64 reference; α = 0 is plain
/// cross-entropy; identical distributions give KL 0; bad input.</summary>
public class DistillationLossTests
{
    private const int Ignore = CrossEntropy.IgnoreIndex;
    private const int N = 6, C = 4, V = 7, K = 3;
    private static readonly int[] Targets = [6, 0, Ignore, 3, 3, 1];

    private static float[] TeacherLogits(ulong seed, int rows = N, int vocab = V)
    {
        var t = new float[rows * vocab];
        new Rng(seed).FillGaussian(t, 0f, 2f);
        return t;
    }

    private static TeacherTargets Teacher(bool topK) => topK
        ? TeacherTargets.TopKOf(TeacherLogits(71), N, V, K)
        : TeacherTargets.Full(TeacherLogits(71), N, V);

    [Theory]
    [InlineData(KlDirection.Forward, false, 0.5, 1 << 18)]
    [InlineData(KlDirection.Forward, false, 1.0, 7)]
    [InlineData(KlDirection.Reverse, false, 0.5, 14)]
    [InlineData(KlDirection.Reverse, false, 1.0, 1 << 18)]
    [InlineData(KlDirection.Forward, true, 0.5, 14)]
    [InlineData(KlDirection.Forward, true, 1.0, 1 << 18)]
    [InlineData(KlDirection.Reverse, true, 0.5, 1 << 18)]
    [InlineData(KlDirection.Reverse, true, 1.0, 7)]
    public void GradientsMatchCentralDifferencesAndF32MatchesF64(KlDirection dir, bool topK, double alpha, int rowChunk)
    {
        var rng = new Rng(72);
        using var x = GradCheck.Param("x", [2, 3, C], rng);
        using var w = GradCheck.Param("w", [V, C], rng);
        var teacher = Teacher(topK);
        var settings = new DistillationSettings(dir, 2.0, alpha);
        int n = OpCheck.Run([x, w], (t, p) => t.DistillationLoss(p[0].Variable, p[1].Variable, Targets, teacher, settings, rowChunk));
        Assert.Equal(N * C + V * C, n);
    }

    [Theory]
    [InlineData(KlDirection.Forward, 0.7)]
    [InlineData(KlDirection.Reverse, 3.0)]
    public void FrozenHeadAndTemperatures(KlDirection dir, double tau)
    {
        var rng = new Rng(73);
        using var x = GradCheck.Param("x", [N, C], rng);
        using var w = GradCheck.Param("w", [V, C], rng, trainable: false);
        var teacher = Teacher(false);
        int n = OpCheck.Run([x, w], (t, p) => t.DistillationLoss(p[0].Variable, p[1].Variable, Targets, teacher, new(dir, tau, 0.3)));
        Assert.Equal(N * C, n);
    }

    [Theory]
    [InlineData(DType.F64)]
    [InlineData(DType.F32)]
    public void AlphaZeroEqualsPlainCrossEntropy(DType dtype)
    {
        var rng = new Rng(74);
        using var x64 = GradCheck.Param("x", [N, C], rng);
        using var w64 = GradCheck.Param("w", [V, C], rng);
        using var x = dtype == DType.F64 ? x64 : OpCheck.ToF32(x64);
        using var w = dtype == DType.F64 ? w64 : OpCheck.ToF32(w64);
        var (l1, gx1, gw1) = LossAndGrads(x, w, t => t.DistillationLoss(x.Variable, w.Variable, Targets, Teacher(false), new(KlDirection.Reverse, 2, 0)));
        var (l2, gx2, gw2) = LossAndGrads(x, w, t => t.LmHeadCrossEntropy(x.Variable, w.Variable, Targets));
        double tol = dtype == DType.F64 ? 1e-12 : 1e-5;
        Assert.Equal(l2, l1, tol);
        for (int i = 0; i < gx1.Length; i++) Assert.Equal(gx2[i], gx1[i], tol);
        for (int i = 0; i < gw1.Length; i++) Assert.Equal(gw2[i], gw1[i], tol);
    }

    [Theory]
    [InlineData(KlDirection.Forward, false)]
    [InlineData(KlDirection.Reverse, false)]
    [InlineData(KlDirection.Forward, true)]
    [InlineData(KlDirection.Reverse, true)]
    public void IdenticalDistributionsHaveZeroKl(KlDirection dir, bool topK)
    {
        var rng = new Rng(75);
        using var x = GradCheck.Param("x", [N, C], rng, scale: 2);
        using var w = GradCheck.Param("w", [V, C], rng, scale: 2);
        var logits = new double[N * V];
        GemmReference.ABt<double>(x.Value.ReadOnlySpan<double>(), w.Value.ReadOnlySpan<double>(), logits, N, C, V);
        // The teacher is the student itself (shifted by a per-row constant, which softmax ignores).
        var f = Array.ConvertAll(logits, v => (float)v + 3f);
        var teacher = topK ? TeacherTargets.TopKOf(f, N, V, K) : TeacherTargets.Full(f, N, V);
        var (loss, gx, gw) = LossAndGrads(x, w, t => t.DistillationLoss(x.Variable, w.Variable, Targets, teacher, new(dir, 1.5, 1.0)));
        Assert.Equal(0.0, loss, 6);
        Assert.All(gx, g => Assert.Equal(0.0, g, 5));
        Assert.All(gw, g => Assert.Equal(0.0, g, 5));

        // A different teacher gives a positive KL.
        var other = TeacherTargets.Full(TeacherLogits(76), N, V);
        var (kl, _, _) = LossAndGrads(x, w, t => t.DistillationLoss(x.Variable, w.Variable, Targets, other, new(dir, 1.5, 1.0)));
        Assert.True(kl > 1e-3, $"KL {kl}");
    }

    [Fact]
    public void TopKWithEveryIdEqualsFullForm()
    {
        var rng = new Rng(77);
        using var x = GradCheck.Param("x", [N, C], rng);
        using var w = GradCheck.Param("w", [V, C], rng);
        var logits = TeacherLogits(78);
        foreach (var dir in new[] { KlDirection.Forward, KlDirection.Reverse })
        {
            var s = new DistillationSettings(dir, 2, 0.6);
            var (l1, gx1, gw1) = LossAndGrads(x, w, t => t.DistillationLoss(x.Variable, w.Variable, Targets, TeacherTargets.Full(logits, N, V), s));
            var (l2, gx2, gw2) = LossAndGrads(x, w, t => t.DistillationLoss(x.Variable, w.Variable, Targets, TeacherTargets.TopKOf(logits, N, V, V), s));
            Assert.Equal(l1, l2, 5);
            for (int i = 0; i < gx1.Length; i++) Assert.Equal(gx1[i], gx2[i], 5);
            for (int i = 0; i < gw1.Length; i++) Assert.Equal(gw1[i], gw2[i], 5);
        }
    }

    [Theory]
    [InlineData(1, 1, 1, 1)]
    [InlineData(5, 7, 37, 100)]
    [InlineData(9, 3, 64, 64)]
    [InlineData(17, 8, 129, 1 << 18)]
    public void ChunkedFloatMatchesReferenceOnOddShapes(int rows, int channels, int vocab, int rowChunk)
    {
        var rng = new Rng(79 + (ulong)vocab);
        var x = new float[rows * channels];
        var w = new float[vocab * channels];
        rng.FillGaussian(x, 0f, 1f);
        rng.FillGaussian(w, 0f, 1f);
        var targets = new int[rows];
        for (int r = 0; r < rows; r++) targets[r] = r % 4 == 2 ? Ignore : (int)(rng.NextDouble() * vocab);
        var teacher = TeacherTargets.TopKOf(TeacherLogits(80, rows, vocab), rows, vocab, Math.Min(5, vocab));
        foreach (var dir in new[] { KlDirection.Forward, KlDirection.Reverse })
        {
            var s = new DistillationSettings(dir, 2, 0.5);
            var fast = DistillationLoss.LmHeadForward<float>(x, w, targets, teacher, s, rows, channels, vocab, rowChunk);
            var (refSum, refCount) = DistillationLossReference.LmHeadForward<double>(Array.ConvertAll(x, v => (double)v), Array.ConvertAll(w, v => (double)v),
                targets, teacher, s, rows, channels, vocab);
            Assert.Equal(refCount, fast.Count);
            Assert.Equal(refSum, fast.LossSum, Math.Max(1e-4, 1e-5 * Math.Abs(refSum)));

            var dx = new float[rows * channels];
            var dw = new float[vocab * channels];
            var dx64 = new double[rows * channels];
            var dw64 = new double[vocab * channels];
            DistillationLoss.LmHeadBackward<float>(x, w, targets, teacher, s, dx, dw, rows, channels, vocab, 0.5f, rowChunk);
            DistillationLossReference.LmHeadBackward<double>(Array.ConvertAll(x, v => (double)v), Array.ConvertAll(w, v => (double)v),
                targets, teacher, s, dx64, dw64, rows, channels, vocab, 0.5);
            for (int i = 0; i < dx.Length; i++) Assert.Equal(dx64[i], dx[i], 1e-4);
            for (int i = 0; i < dw.Length; i++) Assert.Equal(dw64[i], dw[i], 1e-4);
        }
    }

    [Fact]
    public void BadInputIsRefusedWithClearErrors()
    {
        var rng = new Rng(81);
        using var x = GradCheck.Param("x", [N, C], rng);
        using var w = GradCheck.Param("w", [V, C], rng);
        using var tape = new Tape();
        var wrongRows = TeacherTargets.Full(TeacherLogits(82, N - 1), N - 1, V);
        var e = Assert.Throws<ShapeException>(() => tape.DistillationLoss(x.Variable, w.Variable, Targets, wrongRows, DistillationSettings.Default));
        Assert.Contains("teacher covers 5 rows", e.Message);
        var wrongVocab = TeacherTargets.Full(TeacherLogits(82, N, V + 1), N, V + 1);
        Assert.Throws<ShapeException>(() => tape.DistillationLoss(x.Variable, w.Variable, Targets, wrongVocab, DistillationSettings.Default));
        Assert.Throws<ShapeException>(() => TeacherTargets.TopK([0, 9], [0f, 0f], 1, 2, V));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DistillationSettings(KlDirection.Forward, 0, 0.5).Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new DistillationSettings(KlDirection.Forward, 2, 1.5).Validate());
        var nan = TeacherLogits(83);
        nan[3] = float.NaN;
        Assert.Throws<NonFiniteException>(() => tape.DistillationLoss(x.Variable, w.Variable, Targets, TeacherTargets.Full(nan, N, V), DistillationSettings.Default));
        using var x32 = OpCheck.ToF32(x);
        using var w32 = OpCheck.ToF32(w);
        Assert.Throws<NonFiniteException>(() => tape.DistillationLoss(x32.Variable, w32.Variable, Targets, TeacherTargets.Full(nan, N, V), DistillationSettings.Default));
    }

    private static (double Loss, double[] Dx, double[] Dw) LossAndGrads(Parameter x, Parameter w, Func<Tape, Variable> build)
    {
        x.ZeroGrad();
        w.ZeroGrad();
        using var tape = new Tape();
        double loss = tape.Backward(build(tape));
        return (loss, ToDoubles(x.Grad!), ToDoubles(w.Grad!));
    }

    private static double[] ToDoubles(Tensor t) => t.DType == DType.F64 ? t.ReadOnlySpan<double>().ToArray() : Array.ConvertAll(t.ToFloatArray(), v => (double)v);
}
