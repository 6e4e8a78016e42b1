using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Autograd;
using EdgeTune.Models;
using EdgeTune.Nn;
using EdgeTune.Tensors;

namespace EdgeTune.Compression.Pruning;

/// <summary>What structured pruning removes from every decoder block (the same count in each, as a Llama config
/// has one head count and one intermediate size).</summary>
public sealed record StructuredPruningOptions
{
    /// <summary>Share of attention heads removed, in [0, 1). Heads go in whole KV groups (a key/value head with
    /// the query heads that share it), so the share is rounded to whole groups: round(fraction × kv heads).</summary>
    public double HeadFraction { get; init; }

    /// <summary>Share of MLP intermediate channels removed, in [0, 1): rows of gate/up and columns of down.</summary>
    public double MlpFraction { get; init; }

    public StructuredPruningOptions Validate()
    {
        if (!(HeadFraction >= 0 && HeadFraction < 1)) throw new ArgumentException($"StructuredPruningOptions: head fraction {HeadFraction} is outside [0, 1)");
        if (!(MlpFraction >= 0 && MlpFraction < 1)) throw new ArgumentException($"StructuredPruningOptions: MLP fraction {MlpFraction} is outside [0, 1)");
        return this;
    }
}

/// <summary>The physically smaller model and, per layer, which KV groups and MLP channels of the original it kept.</summary>
public sealed record StructuredPruningResult(DecoderModel Model, IReadOnlyList<int[]> KeptKvHeads, IReadOnlyList<int[]> KeptChannels,
    long ParametersBefore, long ParametersAfter);

/// <summary>
/// Structured pruning: removes whole attention heads and MLP intermediate channels and builds a smaller
/// <see cref="DecoderModel"/> with an updated config (num_attention_heads, num_key_value_heads, intermediate_size and an
/// explicit head_dim) that saves as an ordinary safetensors checkpoint and loads with the normal loader.
/// </summary>
/// <remarks>
/// GQA: heads are removed in whole KV groups — a key/value head together with the query heads that attend through
/// it — so the remaining heads keep the original query-per-KV ratio and the GQA mapping stays contiguous. (Removing
/// query heads inside every group instead would need an equal count removed per group; with two query heads per KV
/// head that is all-or-half, so whole groups are the finer and simpler choice.) For multi-head attention a group is one head.
/// Importance with calibration norms (<see cref="ActivationNorms"/>): a group's Σ_j ‖X_j‖₂·‖O[:, j]‖₂ over the o_proj
/// input columns of its query heads; an MLP channel's ‖X_j‖₂·‖Down[:, j]‖₂ (its contribution to the block output).
/// Without calibration: ‖O[:, group]‖_F·‖V[group]‖_F and ‖Down[:, j]‖₂·‖Up[j, :]‖₂. The lowest-scored go, in each layer.
/// </remarks>
public static class StructuredPruner
{
    public static StructuredPruningResult Prune(DecoderModel model, StructuredPruningOptions options, ActivationNorms? activations = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var c = model.Config;
        int hkv = c.NumKeyValueHeads, groupSize = c.NumAttentionHeads / hkv, inter = c.IntermediateSize;
        int dropGroups = Math.Clamp((int)Math.Round(options.HeadFraction * hkv), 0, hkv - 1);
        int dropChannels = Math.Clamp((int)Math.Round(options.MlpFraction * inter), 0, inter - 1);
        var keptHeads = new List<int[]>();
        var keptChannels = new List<int[]>();
        for (int l = 0; l < model.Layers.Count; l++)
        {
            keptHeads.Add(KeepHighest(HeadGroupScores(model, l, activations), hkv - dropGroups));
            keptChannels.Add(KeepHighest(ChannelScores(model, l, activations), inter - dropChannels));
        }
        var config = c with
        {
            NumKeyValueHeads = hkv - dropGroups,
            NumAttentionHeads = (hkv - dropGroups) * groupSize,
            HeadDim = c.HeadDim,
            IntermediateSize = inter - dropChannels,
        };
        var parameters = new ParameterCollection();
        try
        {
            foreach (var p in model.Parameters)
                parameters.Add(new Parameter(p.Name, Slice(model, p, keptHeads, keptChannels, groupSize), trainable: false));
            var small = DecoderModel.FromParameters(config, parameters, model.RopeStyle);
            return new StructuredPruningResult(small, keptHeads, keptChannels, model.Parameters.ElementCount, small.Parameters.ElementCount);
        }
        catch
        {
            parameters.Dispose();
            throw;
        }
    }

    /// <summary>Importance of each KV group of layer <paramref name="layer"/> (see the remarks of <see cref="StructuredPruner"/>).</summary>
    public static float[] HeadGroupScores(DecoderModel model, int layer, ActivationNorms? activations)
    {
        var c = model.Config;
        var L = new Block(model, layer);
        int hkv = c.NumKeyValueHeads, gs = c.NumAttentionHeads / hkv, d = c.HeadDim, qDim = c.QueryDim, hidden = c.HiddenSize;
        var o = Weights(L.O);      // [C, qDim]
        var colNorm = ColumnNorms(o, hidden, qDim);
        var scores = new float[hkv];
        if (activations is not null)
        {
            var x = activations.Of(L.O.Name + ".weight");
            for (int g = 0; g < hkv; g++)
            {
                double s = 0;
                for (int j = g * gs * d; j < (g + 1) * gs * d; j++) s += (double)x[j] * colNorm[j];
                scores[g] = (float)s;
            }
            return scores;
        }
        var v = L.VWeights();      // [kvDim, C]
        for (int g = 0; g < hkv; g++)
        {
            double oo = 0, vv = 0;
            for (int j = g * gs * d; j < (g + 1) * gs * d; j++) oo += (double)colNorm[j] * colNorm[j];
            foreach (float f in v.AsSpan(g * d * hidden, d * hidden)) vv += (double)f * f;
            scores[g] = (float)Math.Sqrt(oo * vv);
        }
        return scores;
    }

    /// <summary>Importance of each MLP intermediate channel of layer <paramref name="layer"/>.</summary>
    public static float[] ChannelScores(DecoderModel model, int layer, ActivationNorms? activations)
    {
        var c = model.Config;
        var L = new Block(model, layer);
        int inter = c.IntermediateSize, hidden = c.HiddenSize;
        var downNorm = ColumnNorms(Weights(L.Down), hidden, inter);
        var scores = new float[inter];
        if (activations is not null)
        {
            var x = activations.Of(L.Down.Name + ".weight");
            for (int j = 0; j < inter; j++) scores[j] = x[j] * downNorm[j];
            return scores;
        }
        var up = L.UpWeights(); // [I, C]
        for (int j = 0; j < inter; j++)
        {
            double s = 0;
            foreach (float f in up.AsSpan(j * hidden, hidden)) s += (double)f * f;
            scores[j] = downNorm[j] * (float)Math.Sqrt(s);
        }
        return scores;
    }

    /// <summary>The projections of block <paramref name="layer"/> that structured pruning scores: separate q/k/v/o and
    /// gate/up/down, or Phi-3's fused <c>qkv_proj</c> (rows q, k, v) and <c>gate_up_proj</c> (rows gate, up).</summary>
    private sealed class Block(DecoderModel model, int layer)
    {
        private ILinear? Find(string local) =>
            ModuleTree.TryGet(model, $"model.layers.{layer}.{local}", out var m) ? (ILinear)m : null;

        private ILinear P(string local) => Find(local) ?? throw new NotSupportedException(
            $"structured pruning: a {model.Config.ModelType} block has no 'model.layers.{layer}.{local}' (it needs q/k/v (or qkv), o, gate/up (or gate_up) and down projections)");

        public ILinear O => P("self_attn.o_proj");
        public ILinear Down => P("mlp.down_proj");

        /// <summary>v_proj's weight [kvDim, C]: its own, or rows qDim+kvDim.. of the fused qkv_proj.</summary>
        public float[] VWeights()
        {
            if (Find("self_attn.v_proj") is { } v) return Weights(v);
            var c = model.Config;
            return Weights(P("self_attn.qkv_proj")).AsSpan((c.QueryDim + c.KeyValueDim) * c.HiddenSize, c.KeyValueDim * c.HiddenSize).ToArray();
        }

        /// <summary>up_proj's weight [I, C]: its own, or the second half of the fused gate_up_proj.</summary>
        public float[] UpWeights()
        {
            if (Find("mlp.up_proj") is { } up) return Weights(up);
            var c = model.Config;
            return Weights(P("mlp.gate_up_proj")).AsSpan(c.IntermediateSize * c.HiddenSize, c.IntermediateSize * c.HiddenSize).ToArray();
        }
    }

    /// <summary>Indices of the <paramref name="count"/> highest scores, ascending (ties: the earlier index stays).</summary>
    private static int[] KeepHighest(float[] scores, int count)
    {
        var idx = Enumerable.Range(0, scores.Length).ToArray();
        Array.Sort(idx, (a, b) => scores[b] != scores[a] ? scores[b].CompareTo(scores[a]) : a.CompareTo(b));
        var kept = idx[..count];
        Array.Sort(kept);
        return kept;
    }

    private static float[] Weights(ILinear lin) => lin is Linear l ? l.Weight.Value.ToFloatArray()
        : throw new NotSupportedException($"structured pruning: '{lin.Name}' is a {lin.GetType().Name}; only plain Linear layers can be pruned");

    private static float[] ColumnNorms(float[] w, int rows, int cols)
    {
        var acc = new double[cols];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < cols; j++) { double f = w[r * cols + j]; acc[j] += f * f; }
        return acc.Select(a => (float)Math.Sqrt(a)).ToArray();
    }

    /// <summary>The parameter's tensor with the removed heads/channels cut out (an F32 copy).</summary>
    private static Tensor Slice(DecoderModel model, Parameter p, List<int[]> heads, List<int[]> channels, int groupSize)
    {
        string name = p.Name;
        int d = model.Config.HeadDim;
        for (int l = 0; l < model.Layers.Count; l++)
        {
            if (!name.StartsWith($"model.layers.{l}.", StringComparison.Ordinal)) continue;
            int[] qRows = heads[l].SelectMany(g => Enumerable.Range(g * groupSize * d, groupSize * d)).ToArray();
            int[] kvRows = heads[l].SelectMany(g => Enumerable.Range(g * d, d)).ToArray();
            string local = name[$"model.layers.{l}.".Length..];
            switch (local)
            {
                case "self_attn.q_proj.weight" or "self_attn.q_proj.bias": return TakeRows(p.Value, qRows);
                case "self_attn.k_proj.weight" or "self_attn.k_proj.bias" or "self_attn.v_proj.weight" or "self_attn.v_proj.bias": return TakeRows(p.Value, kvRows);
                case "self_attn.o_proj.weight": return TakeColumns(p.Value, qRows);
                case "mlp.gate_proj.weight" or "mlp.up_proj.weight": return TakeRows(p.Value, channels[l]);
                case "mlp.down_proj.weight": return TakeColumns(p.Value, channels[l]);
                // Phi-3's fused projections: the kept rows of each part, parts in their stored order.
                case "self_attn.qkv_proj.weight" or "self_attn.qkv_proj.bias":
                    {
                        int qDim = model.Config.QueryDim, kvDim = model.Config.KeyValueDim;
                        return TakeRows(p.Value, [.. qRows, .. kvRows.Select(r => qDim + r), .. kvRows.Select(r => qDim + kvDim + r)]);
                    }
                case "mlp.gate_up_proj.weight":
                    {
                        int inter = model.Config.IntermediateSize;
                        return TakeRows(p.Value, [.. channels[l], .. channels[l].Select(r => inter + r)]);
                    }
            }
        }
        var copy = p.Value.DType == DType.F32 ? p.Value.Clone() : Tensor.From<float>(p.Value.ToFloatArray(), p.Value.Shape.ToArray());
        copy.Name = name;
        return copy;
    }

    /// <summary>Rows of a [R, K] matrix (or elements of a [R] vector) at <paramref name="rows"/>.</summary>
    private static Tensor TakeRows(Tensor t, int[] rows)
    {
        var src = t.ToFloatArray();
        int k = t.Rank == 1 ? 1 : t.Dim(1);
        var dst = new float[rows.Length * k];
        for (int i = 0; i < rows.Length; i++) Array.Copy(src, (long)rows[i] * k, dst, (long)i * k, k);
        return Tensor.From<float>(dst, t.Rank == 1 ? [rows.Length] : [rows.Length, k], t.Name);
    }

    /// <summary>Columns of a [R, K] matrix at <paramref name="cols"/>.</summary>
    private static Tensor TakeColumns(Tensor t, int[] cols)
    {
        var src = t.ToFloatArray();
        int r = t.Dim(0), k = t.Dim(1);
        var dst = new float[r * cols.Length];
        for (int i = 0; i < r; i++)
            for (int j = 0; j < cols.Length; j++) dst[i * cols.Length + j] = src[i * k + cols[j]];
        return Tensor.From<float>(dst, [r, cols.Length], t.Name);
    }
}
