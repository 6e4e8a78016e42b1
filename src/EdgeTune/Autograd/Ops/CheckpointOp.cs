using EdgeTune.Tensors;

namespace EdgeTune.Autograd;

/// <summary>
/// Activation checkpointing: runs a segment of the graph (a transformer block) without keeping its
/// intermediates, and recomputes them in backward. x: any shape → y: the segment's output.
/// </summary>
/// <remarks>
/// <para>Forward runs <c>segment</c> on an inner tape whose input is a leaf viewing x, copies the
/// output into a tensor this op owns, and frees everything else at once: the outer tape keeps only
/// x (owned by its producer) and y. Backward runs the segment again on a fresh recording inner
/// tape, back-propagates y's gradient through it (<see cref="Tape.BackwardFrom"/>), which
/// accumulates into every parameter the segment uses, and adds the inner leaf's gradient into x's.
/// Gradients are bit-identical to running the segment on the outer tape, since the same kernels run
/// on the same values in the same order.</para>
/// <para>The segment must be deterministic: it runs twice. A segment that draws random numbers
/// (dropout) passes its generator as <c>rng</c>: its state is saved before the forward run, set back
/// for the recomputation, and afterwards returned to where the rest of training left it.</para>
/// <para>Parameters are reached as parameter leaves (<see cref="Parameter.Variable"/>), which any tape
/// may read; the op is recorded when x requires a gradient or any trainable parameter reaches y.</para>
/// </remarks>
public sealed class CheckpointOp : TapeOp
{
    private readonly Variable _x;
    private readonly Func<Tape, Variable, Variable> _segment;
    private readonly Rng? _rng;
    private RngState _rngAtForward;
    private Variable _y = null!;
    private PerExampleLinearGradients? _perExample;

    /// <param name="segment">Builds the segment on the given tape from its input.</param>
    /// <param name="x">The segment's input.</param>
    /// <param name="rng">The generator the segment draws from, if any (replayed for the recomputation).</param>
    public CheckpointOp(Func<Tape, Variable, Variable> segment, Variable x, Rng? rng = null) : base("Checkpoint", x)
    {
        ArgumentNullException.ThrowIfNull(segment);
        ArgumentNullException.ThrowIfNull(x);
        _segment = segment;
        _x = x;
        _rng = rng;
    }

    /// <summary>How many times the segment ran (forward and recomputations), for tests.</summary>
    public int Runs { get; private set; }

    protected internal override void Forward(Tape tape)
    {
        bool xGrad = tape.IsRecording && _x.RequiresGrad;
        // When x requires a gradient the op is recorded anyway; otherwise record the inner forward to
        // learn whether a trainable parameter reaches the output.
        _perExample = tape.PerExample;
        using var inner = new Tape { IsRecording = tape.IsRecording && !xGrad, PerExample = tape.PerExample };
        var leaf = InnerLeaf(xGrad);
        if (_rng is not null) _rngAtForward = _rng.State;
        try
        {
            Runs++;
            Variable y = _segment(inner, leaf) ?? throw new InvalidOperationException($"{Name}: the segment returned null");
            NeedsBackward = xGrad || (tape.IsRecording && y.RequiresGrad);
            if (y.DType is not (DType.F32 or DType.F64) && NeedsBackward)
                throw new ShapeException($"{Name}: segment output '{y.Name}' is {y.DType}; gradients flow through F32 or F64 only");
            _y = NewOutput(tape, y.DType, y.Shape, "checkpoint");
            y.Value.Bytes.CopyTo(Writable(_y.Value));
        }
        finally
        {
            inner.Reset();
            leaf.Dispose();
        }
    }

    protected internal override void Backward()
    {
        Tensor? dy = _y.Grad;
        if (dy is null) return;
        Tensor? dx = GradOf(_x);
        using var inner = new Tape { PerExample = _perExample };
        var leaf = InnerLeaf(dx is not null);
        RngState? later = _rng?.State;
        if (_rng is not null) _rng.State = _rngAtForward;
        try
        {
            Runs++;
            Variable y = _segment(inner, leaf);
            if (y.ElementCount != _y.ElementCount || y.DType != _y.DType)
                throw new InvalidOperationException($"{Name}: the recomputed segment gave {y.DType}{y.Value.ShapeString}, the forward gave {_y.DType}{_y.Value.ShapeString}; the segment must be deterministic");
            inner.BackwardFrom(y, dy);
            if (dx is not null && leaf.Grad is { } g)
            {
                if (dx.DType == DType.F64) System.Numerics.Tensors.TensorPrimitives.Add(dx.Span<double>(), g.ReadOnlySpan<double>(), dx.Span<double>());
                else System.Numerics.Tensors.TensorPrimitives.Add(dx.Span<float>(), g.ReadOnlySpan<float>(), dx.Span<float>());
            }
        }
        finally
        {
            inner.Reset();
            leaf.Dispose();
            if (later is RngState r) _rng!.State = r;
        }
    }

    private Variable InnerLeaf(bool requiresGrad) =>
        requiresGrad ? Variable.Leaf(_x.Value, _x.Name) : Variable.Constant(_x.Value, _x.Name);

    private static unsafe Span<byte> Writable(Tensor t) => new(t.Pointer, checked((int)t.ByteLength));
}

public static partial class TapeOps
{
    /// <summary>Runs <paramref name="segment"/> on x without keeping its intermediates; backward recomputes
    /// them (activation checkpointing). The segment must be deterministic, apart from draws from
    /// <paramref name="rng"/>, which are replayed.</summary>
    public static Variable Checkpoint(this Tape tape, Func<Tape, Variable, Variable> segment, Variable x, Rng? rng = null) =>
        tape.Apply(new CheckpointOp(segment, x, rng));
}
