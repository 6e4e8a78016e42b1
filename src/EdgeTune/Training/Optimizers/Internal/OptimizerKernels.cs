using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using EdgeTune.Tensors.Internal;

namespace EdgeTune.Training.Internal;

/// <summary>
/// Vectorized float optimizer updates, written once over <see cref="IVec{TSelf}"/> and dispatched on
/// <see cref="Simd.Width"/>. Same operations, same order, no FMA as <see cref="OptimizerReference"/>:
/// results are bit-identical to it. The scalar tail is the reference itself.
/// </summary>
internal static class OptimizerKernels
{
    public static void AdamW(Span<float> w, ReadOnlySpan<float> g, Span<float> m, Span<float> v, in AdamWScalars<float> s)
    {
        switch (Simd.Width)
        {
            case SimdWidth.V512: AdamW<V512>(w, g, m, v, s); break;
            case SimdWidth.V256: AdamW<V256>(w, g, m, v, s); break;
            case SimdWidth.V128: AdamW<V128>(w, g, m, v, s); break;
            default: OptimizerReference.AdamW(w, g, m, v, s); break;
        }
    }

    public static void Sgd(Span<float> w, ReadOnlySpan<float> g, Span<float> buf, in SgdScalars<float> s)
    {
        switch (Simd.Width)
        {
            case SimdWidth.V512: Sgd<V512>(w, g, buf, s); break;
            case SimdWidth.V256: Sgd<V256>(w, g, buf, s); break;
            case SimdWidth.V128: Sgd<V128>(w, g, buf, s); break;
            default: OptimizerReference.Sgd(w, g, buf, s); break;
        }
    }

    // optimized at first call: a step runs once per training step, too rarely for tiered JIT to catch up soon
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static double SumOfSquares(ReadOnlySpan<float> x)
    {
        // widen to double lanes: Σ x² is accumulated in double, as the clipping contract says
        int i = 0;
        double total = 0;
        if (Vector.IsHardwareAccelerated && x.Length >= Vector<float>.Count)
        {
            var acc = Vector<double>.Zero;
            ReadOnlySpan<Vector<float>> vs = MemoryMarshal.Cast<float, Vector<float>>(x);
            foreach (var vf in vs)
            {
                Vector.Widen(vf, out Vector<double> lo, out Vector<double> hi);
                acc += lo * lo + hi * hi;
            }
            total = Vector.Sum(acc);
            i = vs.Length * Vector<float>.Count;
        }
        return total + OptimizerReference.SumOfSquares(x[i..]);
    }

    // optimized at first call: a step runs once per training step, too rarely for tiered JIT to catch up soon
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AdamW<TV>(Span<float> w, ReadOnlySpan<float> g, Span<float> m, Span<float> v, in AdamWScalars<float> s)
        where TV : struct, IVec<TV>
    {
        OptimizerReference.CheckLengths("AdamW", w.Length, g.Length, m.Length, v.Length);
        int n = w.Length, i = 0;
        if (TV.IsAccelerated)
        {
            ref float wr = ref MemoryMarshal.GetReference(w);
            ref float gr = ref MemoryMarshal.GetReference(g);
            ref float mr = ref MemoryMarshal.GetReference(m);
            ref float vr = ref MemoryMarshal.GetReference(v);
            TV decay = TV.Broadcast(s.Decay), b1 = TV.Broadcast(s.Beta1), c1 = TV.Broadcast(s.OneMinusBeta1);
            TV b2 = TV.Broadcast(s.Beta2), c2 = TV.Broadcast(s.OneMinusBeta2), step = TV.Broadcast(s.StepSize);
            TV inv = TV.Broadcast(s.InvSqrtBias2), eps = TV.Broadcast(s.Epsilon);
            for (; i <= n - TV.Count; i += TV.Count)
            {
                nuint o = (nuint)i;
                TV gi = TV.Load(in gr, o);
                TV wi = TV.Mul(TV.Load(in wr, o), decay);
                TV mi = TV.Add(TV.Mul(b1, TV.Load(in mr, o)), TV.Mul(c1, gi));
                TV vi = TV.Add(TV.Mul(b2, TV.Load(in vr, o)), TV.Mul(c2, TV.Mul(gi, gi)));
                TV denom = TV.Add(TV.Mul(TV.Sqrt(vi), inv), eps);
                TV.Store(TV.Sub(wi, TV.Div(TV.Mul(step, mi), denom)), ref wr, o);
                TV.Store(mi, ref mr, o);
                TV.Store(vi, ref vr, o);
            }
        }
        if (i < n) OptimizerReference.AdamW(w[i..], g[i..], m[i..], v[i..], s);
    }

    // optimized at first call: a step runs once per training step, too rarely for tiered JIT to catch up soon
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Sgd<TV>(Span<float> w, ReadOnlySpan<float> g, Span<float> buf, in SgdScalars<float> s)
        where TV : struct, IVec<TV>
    {
        bool momentum = buf.Length > 0;
        OptimizerReference.CheckLengths("Sgd", w.Length, g.Length, momentum ? buf.Length : w.Length, w.Length);
        int n = w.Length, i = 0;
        if (TV.IsAccelerated)
        {
            ref float wr = ref MemoryMarshal.GetReference(w);
            ref float gr = ref MemoryMarshal.GetReference(g);
            ref float br = ref MemoryMarshal.GetReference(buf);
            TV lr = TV.Broadcast(s.LearningRate), wd = TV.Broadcast(s.WeightDecay), mu = TV.Broadcast(s.Momentum);
            TV bs = TV.Broadcast(s.BufScale), gs = TV.Broadcast(s.GradScale);
            if (!momentum)
            {
                for (; i <= n - TV.Count; i += TV.Count)
                {
                    nuint o = (nuint)i;
                    TV wi = TV.Load(in wr, o);
                    TV d = TV.Add(TV.Load(in gr, o), TV.Mul(wd, wi));
                    TV.Store(TV.Sub(wi, TV.Mul(lr, d)), ref wr, o);
                }
            }
            else
            {
                for (; i <= n - TV.Count; i += TV.Count)
                {
                    nuint o = (nuint)i;
                    TV wi = TV.Load(in wr, o);
                    TV d = TV.Add(TV.Load(in gr, o), TV.Mul(wd, wi));
                    TV b = TV.Add(TV.Mul(bs, TV.Load(in br, o)), TV.Mul(gs, d));
                    TV.Store(b, ref br, o);
                    d = s.Nesterov ? TV.Add(d, TV.Mul(mu, b)) : b;
                    TV.Store(TV.Sub(wi, TV.Mul(lr, d)), ref wr, o);
                }
            }
        }
        if (i < n) OptimizerReference.Sgd(w[i..], g[i..], momentum ? buf[i..] : default, s);
    }
}
