using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Tensors;

namespace EdgeTune.Compression.Distillation;

/// <summary>
/// What the teacher says about N positions, in one of two forms.
/// <list type="bullet">
/// <item><b>Full</b>: the teacher's logits [N, V] (computed on the fly by a teacher model).</item>
/// <item><b>Top-k</b>: per position the k most likely ids [N, k] and their log-probabilities [N, k]
/// (at temperature 1), as a <see cref="TeacherCache"/> stores them.</item>
/// </list>
/// </summary>
/// <remarks>
/// In the top-k form the rest of the teacher's mass is dropped and both distributions are
/// <b>renormalised over the k ids</b>: p_T^τ(j) ∝ exp(logp_j / τ) and p_S^τ(j) ∝ exp(z_j / τ) for j in
/// the row's top-k set. So the KL (either direction) is finite and exact on that set, only k student
/// logits per row get a KL gradient, and the other V − k logits learn from the cross-entropy term
/// alone. With k = V the top-k form equals the full form (log-probabilities and logits differ by a
/// per-row constant, which softmax ignores).
/// </remarks>
public sealed class TeacherTargets
{
    private TeacherTargets(int rows, int vocab, int k, float[] values, int[]? ids)
    {
        Rows = rows;
        Vocab = vocab;
        K = k;
        Values = values;
        Ids = ids;
    }

    /// <summary>Positions N.</summary>
    public int Rows { get; }

    /// <summary>Vocabulary size V of the teacher.</summary>
    public int Vocab { get; }

    /// <summary>Entries per row: V for the full form, k for top-k.</summary>
    public int K { get; }

    /// <summary>Logits [N, V] (full form) or log-probabilities [N, k] (top-k form).</summary>
    public float[] Values { get; }

    /// <summary>Null for the full form; token ids [N, k] for top-k.</summary>
    public int[]? Ids { get; }

    public bool IsTopK => Ids is not null;

    /// <summary>Full teacher logits [rows, vocab] (not copied).</summary>
    public static TeacherTargets Full(float[] logits, int rows, int vocab)
    {
        ArgumentNullException.ThrowIfNull(logits);
        if (rows < 0 || vocab < 1) throw new ShapeException($"TeacherTargets.Full: rows {rows} and vocab {vocab} must be >= 0 and >= 1");
        ShapeException.RequireLength("TeacherTargets.Full", "logits", logits.Length, (long)rows * vocab);
        return new TeacherTargets(rows, vocab, vocab, logits, null);
    }

    /// <summary>Top-k ids [rows, k] in [0, vocab) and their log-probabilities [rows, k] (not copied).</summary>
    public static TeacherTargets TopK(int[] ids, float[] logProbs, int rows, int k, int vocab)
    {
        ArgumentNullException.ThrowIfNull(ids);
        ArgumentNullException.ThrowIfNull(logProbs);
        if (rows < 0 || k < 1 || vocab < 1 || k > vocab)
            throw new ShapeException($"TeacherTargets.TopK: rows {rows}, k {k}, vocab {vocab}; expected rows >= 0 and 1 <= k <= vocab");
        ShapeException.RequireLength("TeacherTargets.TopK", "ids", ids.Length, (long)rows * k);
        ShapeException.RequireLength("TeacherTargets.TopK", "logProbs", logProbs.Length, (long)rows * k);
        for (int i = 0; i < ids.Length; i++)
            if ((uint)ids[i] >= (uint)vocab)
                throw new ShapeException($"TeacherTargets.TopK: ids[{i / k}, {i % k}] = {ids[i]} is outside the vocabulary [0, {vocab})");
        return new TeacherTargets(rows, vocab, k, logProbs, ids);
    }

    /// <summary>The k largest entries of every row of full <paramref name="logits"/> [rows, vocab], as ids
    /// (descending; equal logits in id order) and log-softmax values at temperature 1.</summary>
    public static TeacherTargets TopKOf(ReadOnlySpan<float> logits, int rows, int vocab, int k)
    {
        if (k < 1 || k > vocab) throw new ArgumentOutOfRangeException(nameof(k), k, $"top-k must lie in [1, {vocab}]");
        ShapeException.RequireLength("TeacherTargets.TopKOf", "logits", logits.Length, (long)rows * vocab);
        var ids = new int[rows * k];
        var lp = new float[rows * k];
        for (int r = 0; r < rows; r++)
        {
            var row = logits.Slice(r * vocab, vocab);
            double max = double.NegativeInfinity, sum = 0;
            foreach (float v in row) max = Math.Max(max, v);
            foreach (float v in row) sum += Math.Exp(v - max);
            double lse = max + Math.Log(sum);
            // Insertion into a sorted top-k list: O(V) when most logits fall below the k-th, O(V·k) at worst.
            var topIds = ids.AsSpan(r * k, k);
            var topVal = lp.AsSpan(r * k, k);
            int n = 0;
            for (int j = 0; j < vocab; j++)
            {
                float v = row[j];
                if (n == k && !(v > topVal[k - 1])) continue;
                int at = n < k ? n++ : k - 1;
                while (at > 0 && v > topVal[at - 1])
                {
                    topVal[at] = topVal[at - 1];
                    topIds[at] = topIds[at - 1];
                    at--;
                }
                topVal[at] = v;
                topIds[at] = j;
            }
            for (int j = 0; j < k; j++) topVal[j] = (float)(topVal[j] - lse);
        }
        return new TeacherTargets(rows, vocab, k, lp, ids);
    }
}
