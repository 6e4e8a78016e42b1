using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Compression.Pruning.Internal;
using EdgeTune.Models;
using EdgeTune.Tensors;

namespace EdgeTune.Compression.Pruning;

/// <summary>
/// Unstructured and N:M (2:4) pruning of a model's decoder projections by magnitude or Wanda score: computes a
/// <see cref="PruningMask"/> and zeroes the pruned weights in place. The shapes do not change; the zeros are what
/// a sparse kernel or a compressor exploits, and the mask keeps them fixed during recovery fine-tuning.
/// </summary>
public static class WeightPruner
{
    /// <summary>Computes the mask of <paramref name="options"/> and applies it to the model's weights.</summary>
    /// <param name="activations">Calibration norms; required for <see cref="PruningScore.Wanda"/>.</param>
    public static PruningMask Prune(DecoderModel model, PruningOptions options, ActivationNorms? activations = null)
    {
        var mask = ComputeMask(model, options, activations);
        mask.ApplyToWeights(model.Parameters);
        return mask;
    }

    /// <summary>The mask <paramref name="options"/> select, without changing the model.</summary>
    public static PruningMask ComputeMask(DecoderModel model, PruningOptions options, ActivationNorms? activations = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (options.Score == PruningScore.Wanda && activations is null)
            throw new ArgumentException("WeightPruner: Wanda needs activation norms from calibration data (ActivationNorms.Collect)", nameof(activations));
        var layers = PrunableWeights.Of(model);
        var mask = new PruningMask();
        if (!options.IsSemiStructured && options.ResolvedScope == PruningScope.Global)
        {
            var all = layers.Select(p => Scores(p, options.Score, activations)).ToArray();
            long total = all.Sum(s => (long)s.Length);
            long prune = (long)Math.Floor(options.Sparsity * total);
            var concat = new float[total];
            long off = 0;
            foreach (var s in all) { s.CopyTo(concat, off); off += s.Length; }
            var keepAll = new byte[total];
            KeepSelection.PruneLowest(concat, keepAll, prune);
            off = 0;
            for (int i = 0; i < layers.Count; i++)
            {
                mask.Set(layers[i].Name, keepAll.AsSpan((int)off, all[i].Length).ToArray());
                off += all[i].Length;
            }
            return mask;
        }
        foreach (var p in layers)
            mask.Set(p.Name, KeepFlags(Scores(p, options.Score, activations), p.Rows, p.Columns, options));
        return mask;
    }

    /// <summary>Importance of each weight of <paramref name="p"/> ([rows, cols] row-major): |W_ij|, or |W_ij|·‖X_j‖₂ for Wanda.</summary>
    public static float[] Scores(PrunableLinear p, PruningScore score, ActivationNorms? activations)
    {
        ArgumentNullException.ThrowIfNull(p);
        var w = p.Weight.Value.ReadOnlySpan<float>();
        if (HasNaN(w))
            throw new ArgumentException($"WeightPruner: weight '{p.Name}' holds NaN; its importance cannot be ranked");
        var s = new float[w.Length];
        System.Numerics.Tensors.TensorPrimitives.Abs(w, s);
        if (score == PruningScore.Wanda)
        {
            if (activations is null) throw new ArgumentException("WeightPruner: Wanda needs activation norms", nameof(activations));
            var norms = activations.Of(p.Name);
            if (norms.Length != p.Columns)
                throw new ShapeException($"WeightPruner: activation norms of '{p.Name}' have {norms.Length} channels; the weight has {p.Columns} input columns");
            for (int r = 0; r < p.Rows; r++)
                System.Numerics.Tensors.TensorPrimitives.Multiply(s.AsSpan(r * p.Columns, p.Columns), norms, s.AsSpan(r * p.Columns, p.Columns));
        }
        return s;
    }

    private static bool HasNaN(ReadOnlySpan<float> w)
    {
        foreach (float f in w) if (float.IsNaN(f)) return true;
        return false;
    }

    /// <summary>Keep flags for one [rows, cols] tensor's scores under <paramref name="options"/> (not the global scope).</summary>
    public static byte[] KeepFlags(ReadOnlySpan<float> scores, int rows, int cols, PruningOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (scores.Length != (long)rows * cols)
            throw new ShapeException($"WeightPruner.KeepFlags: {scores.Length} scores for a [{rows}, {cols}] tensor");
        var keep = new byte[scores.Length];
        if (options.IsSemiStructured)
        {
            KeepSelection.NOfM(scores, keep, rows, cols, options.N, options.M);
            return keep;
        }
        switch (options.ResolvedScope)
        {
            case PruningScope.PerRow:
                long perRow = (long)Math.Floor(options.Sparsity * cols);
                for (int r = 0; r < rows; r++)
                    KeepSelection.PruneLowest(scores.Slice(r * cols, cols), keep.AsSpan(r * cols, cols), perRow);
                break;
            case PruningScope.PerTensor:
                KeepSelection.PruneLowest(scores, keep, (long)Math.Floor(options.Sparsity * scores.Length));
                break;
            default:
                throw new ArgumentException("WeightPruner.KeepFlags: the global scope needs all tensors (use ComputeMask)");
        }
        return keep;
    }
}
