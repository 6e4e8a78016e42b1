using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Autograd;
using EdgeTune.Models;
using EdgeTune.Nn;
using EdgeTune.Tensors;

namespace EdgeTune.Compression.Pruning;

/// <summary>One decoder projection that pruning may thin out: its layer, its place in the block and its plain weight.</summary>
public sealed record PrunableLinear(int Layer, string Projection, Linear Linear)
{
    public Parameter Weight => Linear.Weight;
    public string Name => Linear.Weight.Name;
    public int Rows => Linear.OutFeatures;
    public int Columns => Linear.InFeatures;
}

/// <summary>
/// The weights pruning works on: the seven projections of every decoder block (q, k, v, o, gate, up, down).
/// Embeddings, norms and the output head are left dense (they are small or shared, and the head is tied in
/// many small models).
/// </summary>
public static class PrunableWeights
{
    public static readonly IReadOnlyList<string> Projections = ["q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj", "gate_proj", "up_proj", "gate_up_proj", "down_proj"];

    /// <summary>True for HF names of decoder projection weights ("model.layers.N.{self_attn,mlp}.X_proj.weight").</summary>
    public static bool IsProjectionWeight(string name) =>
        name.StartsWith("model.layers.", StringComparison.Ordinal) && name.EndsWith("_proj.weight", StringComparison.Ordinal)
        && Projections.Any(p => name.EndsWith("." + p + ".weight", StringComparison.Ordinal));

    /// <summary>
    /// The projections of <paramref name="model"/>, layer by layer in q, k, v, o, gate, up, down order. Each must be a
    /// plain <see cref="Linear"/> with a writable F32 weight (load the model with
    /// <c>ModelLoadOptions.FullFineTuning</c>); adapters or quantized layers are refused with their name.
    /// </summary>
    public static IReadOnlyList<PrunableLinear> Of(DecoderModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var list = new List<PrunableLinear>(model.Layers.Count * 7);
        foreach (var (path, layer) in model.Projections())
        {
            int l = ModuleTree.LayerIndex(path);
            string slot = path[(path.LastIndexOf('.') + 1)..];
            if (layer is not Linear lin)
                throw new NotSupportedException($"pruning: '{layer.Name}' is a {layer.GetType().Name}; only plain Linear layers can be pruned (merge or remove adapters first)");
            var w = lin.Weight.Value;
            if (w.DType != DType.F32 || w.IsReadOnly)
                throw new NotSupportedException($"pruning: weight '{lin.Weight.Name}' is {(w.IsReadOnly ? "read-only " : "")}{w.DType}; pruning needs writable F32 weights (load with ModelLoadOptions.FullFineTuning)");
            list.Add(new PrunableLinear(l, slot, lin));
        }
        return list;
    }

    /// <summary>Per-tensor sparsity (exact zeros) of the decoder projections, and of all of them together.</summary>
    public static (IReadOnlyList<TensorSparsity> PerTensor, TensorSparsity Total) Measure(DecoderModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var rows = new List<TensorSparsity>();
        long all = 0, zeros = 0;
        foreach (var p in model.Parameters)
        {
            if (!IsProjectionWeight(p.Name)) continue;
            long z = 0;
            if (p.Value.DType == DType.F32) { foreach (float f in p.Value.ReadOnlySpan<float>()) if (f == 0f) z++; }
            else foreach (float f in p.Value.ToFloatArray()) if (f == 0f) z++;
            rows.Add(new TensorSparsity(p.Name, p.ElementCount, z));
            all += p.ElementCount;
            zeros += z;
        }
        return (rows, new TensorSparsity("decoder projections", all, zeros));
    }
}
