using EdgeTune.Tensors;

namespace EdgeTune.Autograd;

/// <summary>
/// A reverse-mode tape of coarse fused ops. Forward: <c>var y = tape.Linear(x, w.Variable)</c> runs
/// the op now and records it when any input requires a gradient. Backward:
/// <see cref="Backward"/> seeds d(loss)/d(loss) = 1 and runs the recorded ops in reverse, each
/// accumulating into its inputs' gradients; parameter gradients accumulate across calls until
/// zeroed. Not thread-safe: one tape per training step.
/// </summary>
/// <remarks>
/// The tape owns every op output (value and gradient). An intermediate gradient is allocated when
/// first accumulated into; it and the output's value are freed as soon as the producer's backward
/// has run (all consumers ran before it), so memory falls as backward proceeds. Everything else
/// the tape owns is freed by <see cref="Reset"/>, which <see cref="Backward"/> calls at its end.
/// Read values (e.g. the loss) before backward, or use the value <see cref="Backward"/> returns.
/// </remarks>
public sealed class Tape : IDisposable
{
    private readonly List<TapeOp> _ops = [];
    private readonly List<Variable> _owned = [];
    private readonly HashSet<Variable> _ownedSet = new(ReferenceEqualityComparer.Instance);

    /// <summary>Benchmark hook: when set, called after every op's forward (false) and backward (true)
    /// with the op's name and its elapsed Stopwatch ticks. Null (the default) costs one null check.</summary>
    internal static Action<string, bool, long>? OpTimer;

    /// <summary>When false, no op is recorded (inference); outputs require no gradient.</summary>
    public bool IsRecording { get; set; } = true;

    /// <summary>When set, Linear ops whose weight it names keep their input and output gradient for per-example
    /// gradient norms instead of accumulating the weight's gradient (<see cref="PerExampleLinearGradients"/>);
    /// checkpointed segments' inner tapes inherit it.</summary>
    public PerExampleLinearGradients? PerExample { get; init; }

    /// <summary>Recorded ops awaiting backward.</summary>
    public int Count => _ops.Count;

    /// <summary>Op outputs currently owned (and not yet freed) by this tape.</summary>
    public int OwnedCount => _owned.Count;

    /// <summary>Runs <paramref name="op"/>'s forward and records it if it needs a backward.</summary>
    public IReadOnlyList<Variable> ApplyAll(TapeOp op)
    {
        ArgumentNullException.ThrowIfNull(op);
        if (op.Applied) throw new InvalidOperationException($"{op.Name}: this op instance was already applied; make a new one per use");
        op.Applied = true;
        bool needs = false;
        foreach (var input in op.Inputs)
        {
            if (input is null) continue;
            if (input.Producer is not null && !_ownedSet.Contains(input))
                throw new InvalidOperationException($"{op.Name}: input '{input.Name}' was made by another tape or was already freed by Reset/Backward");
            needs |= input.RequiresGrad;
        }
        op.NeedsBackward = needs && IsRecording;
        try
        {
            if (OpTimer is { } timer)
            {
                long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                op.Forward(this);
                timer(op.Name, false, System.Diagnostics.Stopwatch.GetTimestamp() - t0);
            }
            else op.Forward(this);
        }
        catch
        {
            op.Dispose();
            throw;
        }
        if (op.NeedsBackward) _ops.Add(op);
        else op.Dispose();
        return op.Outputs;
    }

    /// <summary>Runs a single-output op; returns its output.</summary>
    public Variable Apply(TapeOp op)
    {
        var outputs = ApplyAll(op);
        if (outputs.Count != 1)
            throw new InvalidOperationException($"{op.Name}: has {outputs.Count} outputs; use ApplyAll");
        return outputs[0];
    }

    internal void Own(Variable v)
    {
        _owned.Add(v);
        _ownedSet.Add(v);
    }

    /// <summary>
    /// Back-propagates from the one-element <paramref name="loss"/>, accumulating into the gradients
    /// of every trainable parameter (and gradient-requiring leaf) that reaches it, then
    /// <see cref="Reset"/>s the tape. Returns the loss value.
    /// </summary>
    /// <exception cref="NonFiniteException">The loss is NaN or infinite (named with the op that made it).</exception>
    public double Backward(Variable loss)
    {
        ArgumentNullException.ThrowIfNull(loss);
        try
        {
            if (loss.Producer is not null && !_ownedSet.Contains(loss))
                throw new InvalidOperationException($"Backward: loss '{loss.Name}' was made by another tape or already freed");
            if (loss.ElementCount != 1)
                throw new ShapeException($"Backward: loss '{loss.Name}' {loss.Value.ShapeString} must hold a single value");
            if (loss.DType is not (DType.F32 or DType.F64))
                throw new ShapeException($"Backward: loss '{loss.Name}' is {loss.DType}; expected F32 or F64");
            double value = loss.Item();
            if (!double.IsFinite(value))
                throw new NonFiniteException(loss.Producer?.Name ?? "leaf", loss.Name, value);
            if (!loss.RequiresGrad)
                throw new InvalidOperationException($"Backward: no trainable parameter reaches loss '{loss.Name}'");

            Tensor seed = loss.EnsureGrad();
            if (seed.DType == DType.F64) seed.Span<double>()[0] += 1.0;
            else seed.Span<float>()[0] += 1f;
            RunBackward();
            return value;
        }
        finally
        {
            Reset();
        }
    }

    /// <summary>
    /// Back-propagates a given output gradient: <paramref name="output"/>'s gradient += <paramref name="gradient"/>
    /// (same dtype and element count), then every recorded op runs in reverse and the tape is reset.
    /// Used by segments recomputed in backward (<see cref="CheckpointOp"/>).
    /// </summary>
    internal void BackwardFrom(Variable output, Tensor gradient)
    {
        try
        {
            if (output.Producer is not null && !_ownedSet.Contains(output))
                throw new InvalidOperationException($"BackwardFrom: output '{output.Name}' was made by another tape or already freed");
            if (!output.RequiresGrad) return;
            Tensor g = output.EnsureGrad();
            if (g.DType != gradient.DType || g.ElementCount != gradient.ElementCount)
                throw new ShapeException($"BackwardFrom: gradient '{gradient.Name}' {gradient.DType}{gradient.ShapeString} does not fit output '{output.Name}' {output.DType}{output.Value.ShapeString}");
            if (g.DType == DType.F64) System.Numerics.Tensors.TensorPrimitives.Add(g.Span<double>(), gradient.ReadOnlySpan<double>(), g.Span<double>());
            else System.Numerics.Tensors.TensorPrimitives.Add(g.Span<float>(), gradient.ReadOnlySpan<float>(), g.Span<float>());
            RunBackward();
        }
        finally
        {
            Reset();
        }
    }

    private void RunBackward()
    {
        for (int i = _ops.Count - 1; i >= 0; i--)
        {
            TapeOp op = _ops[i];
            bool any = false;
            foreach (var o in op.Outputs) any |= o.Grad is not null;
            if (any)
            {
                if (OpTimer is { } timer)
                {
                    long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                    op.Backward();
                    timer(op.Name, true, System.Diagnostics.Stopwatch.GetTimestamp() - t0);
                }
                else op.Backward();
            }
            // every consumer of these outputs ran before their producer: value and gradient are dead
            foreach (var o in op.Outputs) o.DisposeOwned();
            op.Dispose();
            _ops.RemoveAt(i);
        }
    }

    /// <summary>Drops recorded ops and frees everything the tape owns (op outputs and their gradients).</summary>
    public void Reset()
    {
        foreach (var op in _ops) op.Dispose();
        _ops.Clear();
        foreach (var v in _owned) v.DisposeOwned();
        _owned.Clear();
        _ownedSet.Clear();
    }

    public void Dispose() => Reset();
}
