using EdgeTune.Autograd;
using EdgeTune.Tensors;
using EdgeTune.Training.Internal;

namespace EdgeTune.Training;

/// <summary>Hyperparameters of <see cref="Sgd"/>.</summary>
public sealed record SgdOptions
{
    public double LearningRate { get; init; } = 1e-2;
    /// <summary>μ; 0 keeps no momentum buffer.</summary>
    public double Momentum { get; init; }
    /// <summary>Fraction of the gradient held back from the buffer after the first step.</summary>
    public double Dampening { get; init; }
    public bool Nesterov { get; init; }
    /// <summary>L2 weight decay, added to the gradient: g ← g + λ·w.</summary>
    public double WeightDecay { get; init; }

    internal void Validate()
    {
        if (!(LearningRate >= 0)) throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "Sgd: learning rate must be ≥ 0");
        if (!(Momentum >= 0)) throw new ArgumentOutOfRangeException(nameof(Momentum), Momentum, "Sgd: momentum must be ≥ 0");
        if (!(WeightDecay >= 0)) throw new ArgumentOutOfRangeException(nameof(WeightDecay), WeightDecay, "Sgd: weight decay must be ≥ 0");
        if (Nesterov && (Momentum <= 0 || Dampening != 0))
            throw new ArgumentException("Sgd: Nesterov momentum needs momentum > 0 and dampening 0");
    }
}

/// <summary>
/// Stochastic gradient descent with optional momentum (heavy-ball or Nesterov), dampening and L2
/// weight decay. Per element: d ← g + λ·w; with momentum, buf ← d on the first step and
/// buf ← μ·buf + (1 − dampening)·d after it, then d ← buf (or d + μ·buf for Nesterov);
/// w ← w − lr·d. State per parameter: the momentum buffer (none when μ = 0).
/// </summary>
public sealed class Sgd : Optimizer
{
    private readonly SgdOptions _options;
    private bool _first;

    public Sgd(IEnumerable<Parameter> parameters, SgdOptions? options = null)
        : base("Sgd", parameters, slotCount: (options ?? new SgdOptions()).Momentum > 0 ? 1 : 0)
    {
        _options = options ?? new SgdOptions();
        _options.Validate();
        LearningRate = _options.LearningRate;
    }

    public SgdOptions Options => _options;

    public override double LearningRate { get; set; }

    protected override string SlotName(int slot) => "momentum";

    protected override void BeginStep(long step) => _first = step == 1;

    protected override void Update(int index, Parameter parameter, Tensor grad, Tensor[] slots, int start, int count)
    {
        if (parameter.Value.DType == DType.F64)
        {
            var buf = slots.Length > 0 ? slots[0].Span<double>().Slice(start, count) : default;
            OptimizerReference.Sgd(parameter.Value.Span<double>().Slice(start, count), grad.ReadOnlySpan<double>().Slice(start, count), buf, Scalars<double>());
        }
        else
        {
            var buf = slots.Length > 0 ? slots[0].Span<float>().Slice(start, count) : default;
            OptimizerKernels.Sgd(parameter.Value.Span<float>().Slice(start, count), grad.ReadOnlySpan<float>().Slice(start, count), buf, Scalars<float>());
        }
    }

    private SgdScalars<T> Scalars<T>() where T : System.Numerics.IFloatingPointIeee754<T> => new(
        T.CreateChecked(LearningRate), T.CreateChecked(_options.WeightDecay), T.CreateChecked(_options.Momentum),
        _first ? T.Zero : T.CreateChecked(_options.Momentum),
        _first ? T.One : T.CreateChecked(1 - _options.Dampening),
        _options.Nesterov);
}
