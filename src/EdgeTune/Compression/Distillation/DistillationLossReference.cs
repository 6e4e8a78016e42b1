using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using System.Numerics;
using EdgeTune.Tensors;

namespace EdgeTune.Compression.Distillation;

/// <summary>
/// Plain scalar distillation loss, generic over the element type so gradient checks run it in
/// double; it builds the whole student logits matrix. The definition the row-chunked float path
/// (<see cref="DistillationLoss"/>) is tested against, kept forever.
/// </summary>
/// <remarks>
/// Per counted row r (target ≠ <see cref="CrossEntropy.IgnoreIndex"/>), with student logits z and a
/// candidate set S (all V ids, or the teacher's top-k ids, see <see cref="TeacherTargets"/>):
/// s_j = z_j/τ and a_j = teacher_j/τ for j ∈ S; log p_S = s − LSE(s), log p_T = a − LSE(a);
/// forward KL = Σ p_T (log p_T − log p_S), reverse KL = Σ p_S (log p_S − log p_T);
/// CE = LSE(z) − z_target; loss_r = α·τ²·KL + (1 − α)·CE. The op is the mean over counted rows.
/// Gradients: ∂KL/∂z_j = (p_S − p_T)_j / τ (forward) or p_S,j (log p_S,j − log p_T,j − KL) / τ
/// (reverse); ∂CE/∂z = softmax(z) − onehot(target).
/// </remarks>
public static class DistillationLossReference
{
    /// <summary>logits: (N,V) targets: (N) → (Σ loss over counted rows, rows counted); rowLoss: (N) or empty.</summary>
    public static (T Sum, int Count) Forward<T>(ReadOnlySpan<T> logits, ReadOnlySpan<int> targets, TeacherTargets teacher,
        DistillationSettings settings, int rows, int vocab, Span<T> rowLoss = default) where T : IFloatingPointIeee754<T>
    {
        const string op = "DistillationLossReference.Forward";
        Check(op, logits.Length, targets, teacher, settings, rows, vocab);
        if (!rowLoss.IsEmpty) ShapeException.RequireLength(op, "rowLoss", rowLoss.Length, rows);
        T sum = T.Zero;
        int count = 0;
        for (int r = 0; r < rows; r++)
        {
            T loss = T.Zero;
            if (targets[r] != CrossEntropy.IgnoreIndex)
            {
                loss = Row(op, r, logits.Slice(r * vocab, vocab), targets[r], teacher, settings, default, T.Zero);
                sum += loss;
                count++;
            }
            if (!rowLoss.IsEmpty) rowLoss[r] = loss;
        }
        return (sum, count);
    }

    /// <summary>dLogits: (N,V) += ∂(Σ loss)/∂logits · scale (ignored rows untouched).</summary>
    public static void Backward<T>(ReadOnlySpan<T> logits, ReadOnlySpan<int> targets, TeacherTargets teacher, DistillationSettings settings,
        Span<T> dLogits, int rows, int vocab, T scale) where T : IFloatingPointIeee754<T>
    {
        const string op = "DistillationLossReference.Backward";
        Check(op, logits.Length, targets, teacher, settings, rows, vocab);
        ShapeException.RequireLength(op, "dLogits", dLogits.Length, (long)rows * vocab);
        for (int r = 0; r < rows; r++)
            if (targets[r] != CrossEntropy.IgnoreIndex)
                Row(op, r, logits.Slice(r * vocab, vocab), targets[r], teacher, settings, dLogits.Slice(r * vocab, vocab), scale);
    }

    /// <summary>x: (N,C) weight: (V,C): the student logits x·Wᵀ are built whole, then <see cref="Forward{T}"/>.</summary>
    public static (T Sum, int Count) LmHeadForward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> weight, ReadOnlySpan<int> targets, TeacherTargets teacher,
        DistillationSettings settings, int rows, int channels, int vocab) where T : IFloatingPointIeee754<T>
    {
        CheckHead("DistillationLossReference.LmHeadForward", x.Length, weight.Length, rows, channels, vocab);
        var logits = new T[rows * vocab];
        GemmReference.ABt(x, weight, logits, rows, channels, vocab);
        return Forward<T>(logits, targets, teacher, settings, rows, vocab);
    }

    /// <summary>dx: (N,C) += dlogits·W; dWeight: (V,C) += dlogitsᵀ·x unless empty; dlogits = ∂(Σ loss)/∂logits · scale.</summary>
    public static void LmHeadBackward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> weight, ReadOnlySpan<int> targets, TeacherTargets teacher,
        DistillationSettings settings, Span<T> dx, Span<T> dWeight, int rows, int channels, int vocab, T scale) where T : IFloatingPointIeee754<T>
    {
        const string op = "DistillationLossReference.LmHeadBackward";
        CheckHead(op, x.Length, weight.Length, rows, channels, vocab);
        ShapeException.RequireLength(op, "dx", dx.Length, (long)rows * channels);
        var logits = new T[rows * vocab];
        GemmReference.ABt(x, weight, logits, rows, channels, vocab);
        var dLogits = new T[rows * vocab];
        Backward<T>(logits, targets, teacher, settings, dLogits, rows, vocab, scale);
        GemmReference.AB<T>(dLogits, weight, dx, rows, vocab, channels, accumulate: true);
        if (!dWeight.IsEmpty)
        {
            ShapeException.RequireLength(op, "dWeight", dWeight.Length, (long)vocab * channels);
            GemmReference.AtB<T>(dLogits, x, dWeight, vocab, rows, channels, accumulate: true);
        }
    }

    /// <summary>One counted row: returns its loss; when <paramref name="dz"/> is not empty adds scale·∂loss/∂z to it.</summary>
    private static T Row<T>(string op, int r, ReadOnlySpan<T> z, int target, TeacherTargets teacher, DistillationSettings s, Span<T> dz, T scale)
        where T : IFloatingPointIeee754<T>
    {
        int m = teacher.K, vocab = z.Length;
        T tau = T.CreateChecked(s.Temperature), alpha = T.CreateChecked(s.Alpha), one = T.One;
        var sc = new T[m];
        var ac = new T[m];
        for (int j = 0; j < m; j++)
        {
            int id = teacher.Ids is { } ids ? ids[r * m + j] : j;
            T tv = T.CreateChecked(teacher.Values[r * m + j]);
            if (!T.IsFinite(z[id])) throw new ArithmeticException($"{op}: the student logits of row {r} hold NaN or Inf");
            if (!T.IsFinite(tv)) throw new ArithmeticException($"{op}: the teacher values of row {r} hold NaN or Inf");
            sc[j] = z[id] / tau;
            ac[j] = tv / tau;
        }
        T lseS = LogSumExp(sc), lseT = LogSumExp(ac);
        T kl = T.Zero;
        for (int j = 0; j < m; j++)
        {
            T lps = sc[j] - lseS, lpt = ac[j] - lseT;
            kl += s.Direction == KlDirection.Forward ? T.Exp(lpt) * (lpt - lps) : T.Exp(lps) * (lps - lpt);
        }
        T lse1 = LogSumExp(z);
        T ce = lse1 - z[target];
        T loss = alpha * tau * tau * kl + (one - alpha) * ce;
        if (dz.IsEmpty) return loss;

        for (int j = 0; j < vocab; j++)
            dz[j] += scale * (one - alpha) * (T.Exp(z[j] - lse1) - (j == target ? one : T.Zero));
        for (int j = 0; j < m; j++)
        {
            int id = teacher.Ids is { } ids ? ids[r * m + j] : j;
            T lps = sc[j] - lseS, lpt = ac[j] - lseT, ps = T.Exp(lps);
            T dKl = s.Direction == KlDirection.Forward ? ps - T.Exp(lpt) : ps * (lps - lpt - kl); // ∂KL/∂s_j
            dz[id] += scale * alpha * tau * dKl; // τ² · ∂KL/∂s · ∂s/∂z (= 1/τ)
        }
        return loss;
    }

    private static T LogSumExp<T>(ReadOnlySpan<T> v) where T : IFloatingPointIeee754<T>
    {
        T max = T.NegativeInfinity, sum = T.Zero;
        foreach (T x in v)
        {
            if (!T.IsFinite(x)) throw new ArithmeticException("DistillationLossReference: logits hold NaN or Inf");
            max = T.Max(max, x);
        }
        foreach (T x in v) sum += T.Exp(x - max);
        return max + T.Log(sum);
    }

    /// <summary>Shapes, targets and settings shared by the reference and the fast path.</summary>
    internal static void Check(string op, int logitsLength, ReadOnlySpan<int> targets, TeacherTargets teacher, DistillationSettings settings, int rows, int vocab)
    {
        ArgumentNullException.ThrowIfNull(teacher);
        settings.Validate();
        if (rows < 0 || vocab < 1) throw new ShapeException($"{op}: rows {rows} and vocab {vocab} must be >= 0 and >= 1");
        if (logitsLength >= 0) ShapeException.RequireLength(op, "logits", logitsLength, (long)rows * vocab);
        ShapeException.RequireLength(op, "targets", targets.Length, rows);
        if (teacher.Rows != rows || teacher.Vocab != vocab)
            throw new ShapeException($"{op}: the teacher covers {teacher.Rows} rows of vocabulary {teacher.Vocab}; the student has {rows} rows of vocabulary {vocab}");
        for (int r = 0; r < rows; r++)
        {
            int t = targets[r];
            if (t != CrossEntropy.IgnoreIndex && (uint)t >= (uint)vocab)
                throw new ShapeException($"{op}: target {t} of row {r} is outside [0, {vocab}) (and not the ignore index {CrossEntropy.IgnoreIndex})");
        }
    }

    internal static void CheckHead(string op, int xLength, int weightLength, int rows, int channels, int vocab)
    {
        if (rows < 0 || channels < 1 || vocab < 1) throw new ShapeException($"{op}: rows {rows}, channels {channels}, vocab {vocab} must be >= 0, >= 1, >= 1");
        ShapeException.RequireLength(op, "x", xLength, (long)rows * channels);
        ShapeException.RequireLength(op, "weight", weightLength, (long)vocab * channels);
    }
}
