using EdgeTune.Autograd;
using EdgeTune.Tensors;
using EdgeTune.Training.Internal;

namespace EdgeTune.Training;

/// <summary>Hyperparameters of <see cref="AdamW"/> (defaults as in Loshchilov &amp; Hutter / common practice).</summary>
public sealed record AdamWOptions
{
    public double LearningRate { get; init; } = 1e-3;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    public double Epsilon { get; init; } = 1e-8;
    /// <summary>Decoupled weight decay λ: each step w ← w − lr·λ·w, apart from the Adam update.</summary>
    public double WeightDecay { get; init; } = 0.01;
    /// <summary>Which parameters are decayed (null: all). Norm gains and biases are often excluded.</summary>
    public Func<Parameter, bool>? Decays { get; init; }

    internal void Validate()
    {
        if (!(LearningRate >= 0)) throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "AdamW: learning rate must be ≥ 0");
        if (!(Beta1 >= 0 && Beta1 < 1)) throw new ArgumentOutOfRangeException(nameof(Beta1), Beta1, "AdamW: β1 must be in [0, 1)");
        if (!(Beta2 >= 0 && Beta2 < 1)) throw new ArgumentOutOfRangeException(nameof(Beta2), Beta2, "AdamW: β2 must be in [0, 1)");
        if (!(Epsilon > 0)) throw new ArgumentOutOfRangeException(nameof(Epsilon), Epsilon, "AdamW: ε must be > 0");
        if (!(WeightDecay >= 0)) throw new ArgumentOutOfRangeException(nameof(WeightDecay), WeightDecay, "AdamW: weight decay must be ≥ 0");
    }
}

/// <summary>
/// Adam with decoupled weight decay. Step t (from 1), per element:
/// w ← w·(1 − lr·λ); m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
/// w ← w − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε).
/// State per parameter: m and v (dtype and shape of the parameter). F32 parameters use the
/// vectorized kernel (bit-identical to <see cref="OptimizerReference.AdamW{T}"/>), F64 the reference.
/// </summary>
public sealed class AdamW : Optimizer
{
    private readonly AdamWOptions _options;
    private readonly bool[] _decays;
    private double _stepSize, _invSqrtBias2;

    public AdamW(IEnumerable<Parameter> parameters, AdamWOptions? options = null) : base("AdamW", parameters, slotCount: 2)
    {
        _options = options ?? new AdamWOptions();
        _options.Validate();
        LearningRate = _options.LearningRate;
        _decays = Parameters.Select(p => _options.Decays?.Invoke(p) ?? true).ToArray();
    }

    public AdamWOptions Options => _options;

    public override double LearningRate { get; set; }

    protected override string SlotName(int slot) => slot == 0 ? "m" : "v";

    protected override void BeginStep(long step)
    {
        double bias1 = 1 - Math.Pow(_options.Beta1, step);
        double bias2 = 1 - Math.Pow(_options.Beta2, step);
        _stepSize = LearningRate / bias1;
        _invSqrtBias2 = 1 / Math.Sqrt(bias2);
    }

    protected override void Update(int index, Parameter parameter, Tensor grad, Tensor[] slots, int start, int count)
    {
        double decay = _decays[index] ? 1 - LearningRate * _options.WeightDecay : 1.0;
        if (parameter.Value.DType == DType.F64)
        {
            var s = Scalars<double>(decay);
            OptimizerReference.AdamW(parameter.Value.Span<double>().Slice(start, count), grad.ReadOnlySpan<double>().Slice(start, count),
                slots[0].Span<double>().Slice(start, count), slots[1].Span<double>().Slice(start, count), s);
        }
        else
        {
            var s = Scalars<float>(decay);
            OptimizerKernels.AdamW(parameter.Value.Span<float>().Slice(start, count), grad.ReadOnlySpan<float>().Slice(start, count),
                slots[0].Span<float>().Slice(start, count), slots[1].Span<float>().Slice(start, count), s);
        }
    }

    private AdamWScalars<T> Scalars<T>(double decay) where T : System.Numerics.IFloatingPointIeee754<T> => new(
        T.CreateChecked(decay),
        T.CreateChecked(_options.Beta1), T.CreateChecked(1 - _options.Beta1),
        T.CreateChecked(_options.Beta2), T.CreateChecked(1 - _options.Beta2),
        T.CreateChecked(_stepSize), T.CreateChecked(_invSqrtBias2), T.CreateChecked(_options.Epsilon));
}
