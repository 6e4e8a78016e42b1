using EdgeTune.Autograd;
using EdgeTune.Tensors;

namespace EdgeTune.Federated.Aggregation;

/// <summary>
/// FedProx's client side: adds the gradient of μ/2·‖w − w_global‖², i.e. μ·(w − w_global), to each
/// trainable parameter's gradient. Plug <see cref="Apply"/> into <c>Trainer.AfterBackward</c>.
/// </summary>
public sealed class ProximalTerm
{
    private readonly Dictionary<string, float[]> _global;

    /// <param name="mu">Proximal coefficient μ ≥ 0 (0 makes <see cref="Apply"/> a no-op).</param>
    /// <param name="globalWeights">The round's global weights by parameter name (copied).</param>
    public ProximalTerm(double mu, IReadOnlyDictionary<string, float[]> globalWeights)
    {
        ArgumentNullException.ThrowIfNull(globalWeights);
        if (!(mu >= 0) || double.IsInfinity(mu)) throw new ArgumentOutOfRangeException(nameof(mu), mu, "ProximalTerm: μ must be finite and ≥ 0");
        Mu = mu;
        _global = globalWeights.ToDictionary(kv => kv.Key, kv => (float[])kv.Value.Clone(), StringComparer.Ordinal);
    }

    /// <summary>Takes the current values of <paramref name="parameters"/> as the global weights
    /// (call right after loading the round's global adapter, before training).</summary>
    public static ProximalTerm Snapshot(double mu, IEnumerable<Parameter> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var map = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var p in parameters)
            if (p.Trainable) map[p.Name] = p.Value.ReadOnlySpan<float>().ToArray();
        return new ProximalTerm(mu, map);
    }

    public double Mu { get; }

    /// <summary>grad += μ·(w − w_global) for every trainable F32 parameter.</summary>
    public void Apply(IReadOnlyList<Parameter> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (Mu == 0) return;
        foreach (var p in parameters)
        {
            if (!p.Trainable || p.Grad is null) continue;
            if (!_global.TryGetValue(p.Name, out var g))
                throw new ArgumentException($"ProximalTerm: trainable parameter '{p.Name}' has no global weights");
            if (p.Value.DType != DType.F32)
                throw new ShapeException($"ProximalTerm: parameter '{p.Name}' is {p.Value.DType}; F32 expected");
            AddTo(p.Grad.Span<float>(), p.Value.ReadOnlySpan<float>(), g, (float)Mu);
        }
    }

    /// <summary>grad[i] += μ·(w[i] − wGlobal[i]).</summary>
    public static void AddTo(Span<float> grad, ReadOnlySpan<float> w, ReadOnlySpan<float> wGlobal, float mu)
    {
        if (w.Length != grad.Length || wGlobal.Length != grad.Length)
            throw new ShapeException($"ProximalTerm: grad has {grad.Length} values, w {w.Length}, w_global {wGlobal.Length}; equal lengths expected");
        for (int i = 0; i < grad.Length; i++) grad[i] += mu * (w[i] - wGlobal[i]);
    }
}
