using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Autograd;
using EdgeTune.Tensors;

namespace EdgeTune.Compression.Pruning;

/// <summary>Elements and pruned (zero) elements of one weight tensor.</summary>
public readonly record struct TensorSparsity(string Name, long Elements, long Pruned)
{
    public double Sparsity => Elements == 0 ? 0 : (double)Pruned / Elements;
}

/// <summary>
/// Which elements of which weight tensors are pruned: one keep flag (1 keep, 0 pruned) per element,
/// keyed by parameter name (HF names, e.g. "model.layers.0.mlp.up_proj.weight"). The mask is kept
/// FIXED while the pruned model is fine-tuned: <see cref="ApplyToGradients"/> (the trainer's
/// <c>AfterBackward</c> hook) zeroes the gradients of pruned elements so AdamW's moments never see them,
/// and <see cref="ApplyToWeights"/> (<c>AfterStep</c>) re-zeroes the weights after each step, so weight
/// decay or any update cannot bring a pruned weight back.
/// </summary>
public sealed class PruningMask
{
    private readonly Dictionary<string, byte[]> _keep = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];

    /// <summary>The masked tensors' names, in the order they were added.</summary>
    public IReadOnlyList<string> Names => _order;

    public int Count => _order.Count;

    public bool Contains(string name) => _keep.ContainsKey(name);

    /// <summary>Adds (or replaces) the keep flags of tensor <paramref name="name"/>; the mask keeps the array.</summary>
    public void Set(string name, byte[] keep)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(keep);
        if (!_keep.ContainsKey(name)) _order.Add(name);
        _keep[name] = keep;
    }

    /// <summary>Keep flags of <paramref name="name"/> (1 keep, 0 pruned).</summary>
    public ReadOnlySpan<byte> Keep(string name) => _keep.TryGetValue(name, out var k) ? k
        : throw new KeyNotFoundException($"PruningMask: no mask for tensor '{name}'");

    /// <summary>Per-tensor element and pruned counts, in <see cref="Names"/> order.</summary>
    public IReadOnlyList<TensorSparsity> PerTensor => _order.Select(n =>
    {
        var k = _keep[n];
        return new TensorSparsity(n, k.Length, CountZeros(k));
    }).ToList();

    /// <summary>Pruned elements over all masked tensors.</summary>
    public long PrunedCount => _keep.Values.Sum(CountZeros);

    /// <summary>Elements of all masked tensors.</summary>
    public long ElementCount => _keep.Values.Sum(k => (long)k.Length);

    /// <summary>Pruned share of the masked tensors' elements.</summary>
    public double Sparsity => ElementCount == 0 ? 0 : (double)PrunedCount / ElementCount;

    /// <summary>Sets the pruned elements of every parameter the mask names to zero (others are left alone).</summary>
    public void ApplyToWeights(IEnumerable<Parameter> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        foreach (var p in parameters)
            if (_keep.TryGetValue(p.Name, out var k)) Zero(p.Value, k, "weight", p.Name);
    }

    /// <summary>Zeroes the gradients of pruned elements (parameters without a gradient are skipped).</summary>
    public void ApplyToGradients(IEnumerable<Parameter> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        foreach (var p in parameters)
            if (p.Grad is { } g && _keep.TryGetValue(p.Name, out var k)) Zero(g, k, "gradient", p.Name);
    }

    /// <summary>The trainer hook that keeps pruned gradients at zero (<c>Trainer.AfterBackward</c>).</summary>
    public Action<IReadOnlyList<Parameter>> AfterBackward => ps => ApplyToGradients(ps);

    /// <summary>The trainer hook that keeps pruned weights at zero (<c>Trainer.AfterStep</c>).</summary>
    public Action<IReadOnlyList<Parameter>> AfterStep => ps => ApplyToWeights(ps);

    /// <summary>
    /// The mask of the elements that are exactly zero now, in the parameters whose name passes
    /// <paramref name="include"/> (default <see cref="PrunableWeights.IsProjectionWeight"/>). This is how a pruned
    /// checkpoint read back from disk gets its mask again.
    /// </summary>
    public static PruningMask FromZeros(IEnumerable<Parameter> parameters, Func<string, bool>? include = null)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        include ??= PrunableWeights.IsProjectionWeight;
        var mask = new PruningMask();
        foreach (var p in parameters)
        {
            if (!include(p.Name)) continue;
            var t = p.Value;
            var keep = new byte[t.ElementCount];
            switch (t.DType)
            {
                case DType.F32: { var s = t.ReadOnlySpan<float>(); for (int i = 0; i < keep.Length; i++) keep[i] = s[i] == 0f ? (byte)0 : (byte)1; break; }
                case DType.F64: { var s = t.ReadOnlySpan<double>(); for (int i = 0; i < keep.Length; i++) keep[i] = s[i] == 0d ? (byte)0 : (byte)1; break; }
                default:
                    { var s = t.ToFloatArray(); for (int i = 0; i < keep.Length; i++) keep[i] = s[i] == 0f ? (byte)0 : (byte)1; break; }
            }
            mask.Set(p.Name, keep);
        }
        return mask;
    }

    /// <summary>
    /// Trainer hooks that fix the zeros found in the trainable projection weights at the first
    /// <c>AfterBackward</c> call (before any optimizer step has changed a weight): for recovery fine-tuning of a
    /// pruned checkpoint loaded by code that builds its own trainer (e.g. <c>FineTuneJob</c>).
    /// </summary>
    public static (Action<IReadOnlyList<Parameter>> AfterBackward, Action<IReadOnlyList<Parameter>> AfterStep) FixZeros(
        Func<string, bool>? include = null, Action<PruningMask>? onCreated = null)
    {
        PruningMask? mask = null;
        return (ps =>
        {
            if (mask is null)
            {
                mask = FromZeros(ps, include);
                onCreated?.Invoke(mask);
            }
            mask.ApplyToGradients(ps);
        }, ps => mask?.ApplyToWeights(ps));
    }

    private static void Zero(Tensor t, byte[] keep, string what, string name)
    {
        if (t.ElementCount != keep.Length)
            throw new ShapeException($"PruningMask: {what} of '{name}' {t.ShapeString} has {t.ElementCount} elements; the mask has {keep.Length}");
        if (t.IsReadOnly) throw new InvalidOperationException($"PruningMask: {what} of '{name}' is read-only");
        switch (t.DType)
        {
            case DType.F32: { var s = t.Span<float>(); for (int i = 0; i < keep.Length; i++) if (keep[i] == 0) s[i] = 0f; break; }
            case DType.F64: { var s = t.Span<double>(); for (int i = 0; i < keep.Length; i++) if (keep[i] == 0) s[i] = 0d; break; }
            default: throw new ShapeException($"PruningMask: {what} of '{name}' is {t.DType}; pruning writes F32 or F64 tensors");
        }
    }

    private static long CountZeros(byte[] k)
    {
        long n = 0;
        foreach (byte b in k) if (b == 0) n++;
        return n;
    }
}
