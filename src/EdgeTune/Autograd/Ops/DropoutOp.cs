using System.Numerics;
using EdgeTune.Autograd.Internal;
using EdgeTune.Tensors;

namespace EdgeTune.Autograd;

/// <summary>
/// Inverted dropout: y = x ⊙ mask / (1 − p), each mask element 1 with probability 1 − p (drawn from the
/// caller's seeded <see cref="Rng"/>, one draw per element in row-major order). x, y: any shape.
/// </summary>
/// <remarks>The mask is kept as the per-element factor (0 or 1/(1 − p)) for backward: dx += dy ⊙ factor.
/// p = 0 copies x (and draws nothing). Callers apply it only while training.</remarks>
public sealed class DropoutOp : TapeOp
{
    private readonly Variable _x;
    private readonly Rng _rng;
    private Variable _y = null!;
    private Tensor? _factor;

    public DropoutOp(Variable x, double p, Rng rng) : base("Dropout", x)
    {
        if (!(p >= 0 && p < 1)) throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout: the probability must lie in [0, 1)");
        ArgumentNullException.ThrowIfNull(rng);
        _x = x;
        _rng = rng;
        P = p;
    }

    public double P { get; }

    protected internal override void Forward(Tape tape)
    {
        OpChecks.Float(Name, "x", _x);
        _y = NewOutput(tape, _x.DType, _x.Shape, "dropout");
        if (OpChecks.IsDouble(Name, _x.DType)) Run<double>(); else Run<float>();

        void Run<T>() where T : unmanaged, IFloatingPointIeee754<T>
        {
            ReadOnlySpan<T> x = _x.Value.ReadOnlySpan<T>();
            Span<T> y = _y.Value.Span<T>();
            if (P == 0)
            {
                x.CopyTo(y);
                return;
            }
            T keep = T.CreateChecked(1.0 / (1.0 - P));
            Tensor? f = NeedsBackward ? (_factor = Tensor.Zeros(_x.DType, _x.Shape.ToArray(), "dropout.mask")) : null;
            Span<T> fs = f is null ? default : f.Span<T>();
            for (int i = 0; i < x.Length; i++)
            {
                T m = _rng.NextDouble() < P ? T.Zero : keep;
                y[i] = x[i] * m;
                if (f is not null) fs[i] = m;
            }
        }
    }

    protected internal override void Backward()
    {
        if (GradOf(_x) is not { } dx) return;
        Tensor dy = _y.Grad!;
        if (_x.DType == DType.F64) Run<double>(); else Run<float>();

        // dx += dy ⊙ factor (factor ≡ 1 when p = 0)
        void Run<T>() where T : unmanaged, IFloatingPointIeee754<T>
        {
            var d = dx.Span<T>();
            if (_factor is null) System.Numerics.Tensors.TensorPrimitives.Add(d, dy.ReadOnlySpan<T>(), d);
            else System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(dy.ReadOnlySpan<T>(), _factor.ReadOnlySpan<T>(), d, d);
        }
    }

    public override void Dispose()
    {
        _factor?.Dispose();
        _factor = null;
    }
}

public static partial class TapeOps
{
    /// <summary>Inverted dropout with probability <paramref name="p"/>, the mask drawn from <paramref name="rng"/>.</summary>
    public static Variable Dropout(this Tape tape, Variable x, double p, Rng rng) => tape.Apply(new DropoutOp(x, p, rng));
}
