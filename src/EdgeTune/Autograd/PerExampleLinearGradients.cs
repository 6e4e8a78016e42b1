using EdgeTune.Tensors;

namespace EdgeTune.Autograd;

/// <summary>How <see cref="PerExampleLinearGradients"/> gets one example's gradient norm of a weight.</summary>
public enum PerExampleNormMethod
{
    /// <summary>Per weight, whichever of <see cref="Direct"/> and <see cref="Gram"/> costs fewer multiply-adds.</summary>
    Auto,

    /// <summary>Form the example's [out, in] gradient Σ_t g_t x_tᵀ in one reused scratch buffer and sum its squares:
    /// T·in·out multiply-adds per example. Cheap when out·in is small (a LoRA factor: r·d).</summary>
    Direct,

    /// <summary>The "ghost norm": ‖Σ_t g_t x_tᵀ‖² = Σ_{t,s} (g_t·g_s)(x_t·x_s), from the example's T×T Gram matrices
    /// of inputs and output gradients: T²·(in+out) multiply-adds, no [out, in] buffer. Cheap for short sequences
    /// through wide layers.</summary>
    Gram,
}

/// <summary>
/// Per-example gradients of linear weights without per-example gradient buffers ("ghost clipping", Goodfellow 2015;
/// Li et al. 2021; the single-pass "book-keeping" form of Bu et al. 2023). Set on a <see cref="Tape"/>
/// (<see cref="Tape.PerExample"/>): every <see cref="LinearOp"/> (and <see cref="LowRankAddOp"/>, whose B is a linear weight) whose weight is one of <see cref="Weights"/> then
/// keeps a copy of its input x and output gradient g (rows grouped by example: example i owns rows
/// [i·T, (i+1)·T)) instead of accumulating dW. Example i's gradient of W is Σ_{t∈i} g_tᵀ x_t (summed over every use
/// of W), so from the copies: <see cref="SquaredNorms"/> gives each example's ‖∂/∂θ‖² over all captured weights,
/// and <see cref="AccumulateWeighted"/> adds Σ_i c_i·(example i's gradient) to each weight's gradient as one
/// reweighted product per use (the rows of g scaled by c_i) — the clipped sum, with no second forward or backward.
/// </summary>
/// <remarks>
/// <para>Memory: the copies are one layer input (shared by every weight reading the same tensor, e.g. the q/k/v LoRA
/// A factors) and one output gradient per use: for LoRA, B·T·(d + r) per A and B·T·(r + out) per B; never a
/// per-example [out, in] gradient beyond one scratch matrix at a time.</para>
/// <para>The rows of a batch must not interact (a decoder's batch rows are independent), and an op other than a
/// captured Linear that writes a captured weight's gradient is not seen here: the caller checks that the weights'
/// own gradients stayed zero (<see cref="EdgeTune.Privacy.DpSgd"/> falls back to a per-example loop otherwise).</para>
/// <para>F32 runs <see cref="Gemm"/> with double-precision sums of squares; F64 runs <see cref="GemmReference"/>.</para>
/// </remarks>
public sealed class PerExampleLinearGradients : IDisposable
{
    private readonly HashSet<Parameter> _weights;
    private readonly Dictionary<Parameter, List<Use>> _uses = [];
    private readonly Dictionary<Tensor, Tensor> _inputCopies = new(ReferenceEqualityComparer.Instance);
    private readonly List<Tensor> _owned = [];
    private bool _spent;

    private sealed record Use(Tensor X, Tensor Dy, int In, int Out);

    /// <param name="weights">The weights whose per-example gradients are wanted (trainable parameters).</param>
    /// <param name="examples">B: examples (batch rows) per pass.</param>
    /// <param name="rowsPerExample">T: rows of a linear's input per example (the sequence length).</param>
    /// <param name="method">How norms are computed.</param>
    public PerExampleLinearGradients(IEnumerable<Parameter> weights, int examples, int rowsPerExample, PerExampleNormMethod method = PerExampleNormMethod.Auto)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(examples);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rowsPerExample);
        _weights = new HashSet<Parameter>(weights, ReferenceEqualityComparer.Instance);
        Examples = examples;
        RowsPerExample = rowsPerExample;
        Method = method;
    }

    public int Examples { get; }
    public int RowsPerExample { get; }
    public PerExampleNormMethod Method { get; }

    public IReadOnlyCollection<Parameter> Weights => _weights;

    /// <summary>The weights a captured Linear used during backward.</summary>
    public IReadOnlyCollection<Parameter> Recorded => _uses.Keys;

    /// <summary>Bytes of the inputs and output gradients kept (counted in <see cref="TensorMemory"/> too).</summary>
    public long CapturedBytes => _owned.Sum(t => t.DType.ByteSize(t.ElementCount));

    /// <summary>Norm computations that took the Gram route and the direct route (per weight), for tests and benchmarks.</summary>
    public int GramWeights { get; private set; }
    public int DirectWeights { get; private set; }

    internal bool Captures(Variable w) => w.Parameter is { } p && w.RequiresGrad && _weights.Contains(p);

    /// <summary>Called by <see cref="LinearOp"/>'s (and <see cref="LowRankAddOp"/>'s, for B) backward in place of dW += dyᵀ·x.</summary>
    internal void Record(Variable w, Tensor x, Tensor dy, int rows, int inFeatures, int outFeatures)
    {
        if (_spent) throw new InvalidOperationException("PerExampleLinearGradients: already accumulated; use a new one per pass");
        if (rows != (long)Examples * RowsPerExample)
            throw new ShapeException($"PerExampleLinearGradients: Linear '{w.Name}' has {rows} input rows; expected {Examples} examples × {RowsPerExample} rows, grouped by example");
        if (!_inputCopies.TryGetValue(x, out var xc))
        {
            xc = x.Clone();
            _owned.Add(xc);
            _inputCopies[x] = xc;
        }
        var dc = dy.Clone();
        _owned.Add(dc);
        var p = w.Parameter!;
        if (!_uses.TryGetValue(p, out var list)) _uses[p] = list = [];
        list.Add(new Use(xc, dc, inFeatures, outFeatures));
    }

    /// <summary>Multiply-adds per example of the direct and the Gram route for a weight used <paramref name="uses"/> times.</summary>
    public static (double Direct, double Gram) Cost(int rowsPerExample, int inFeatures, int outFeatures, int uses = 1)
    {
        double t = (double)rowsPerExample * uses;
        return (t * inFeatures * outFeatures + (double)inFeatures * outFeatures, t * t * (inFeatures + outFeatures));
    }

    /// <summary>Each example's squared gradient norm summed over the recorded weights.</summary>
    public double[] SquaredNorms()
    {
        var sq = new double[Examples];
        GramWeights = DirectWeights = 0;
        foreach (var (p, uses) in _uses)
        {
            var (direct, gram) = Cost(RowsPerExample, uses[0].In, uses[0].Out, uses.Count);
            bool useGram = Method == PerExampleNormMethod.Gram || (Method == PerExampleNormMethod.Auto && gram < direct);
            if (useGram) GramWeights++; else DirectWeights++;
            if (p.Value.DType == DType.F64)
            {
                if (useGram) GramNorms<double>(uses, sq); else DirectNorms<double>(uses, sq);
            }
            else if (useGram) GramNorms<float>(uses, sq);
            else DirectNorms<float>(uses, sq);
        }
        return sq;
    }

    // sq[i] += ‖Σ_uses Σ_{t∈i} g_tᵀ x_t‖², the example's [out, in] gradient formed in one scratch matrix.
    private void DirectNorms<T>(List<Use> uses, double[] sq) where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        int tRows = RowsPerExample, inF = uses[0].In, outF = uses[0].Out;
        var g = new T[outF * inF];
        for (int i = 0; i < Examples; i++)
        {
            for (int u = 0; u < uses.Count; u++)
            {
                var dy = uses[u].Dy.ReadOnlySpan<T>().Slice(i * tRows * outF, tRows * outF);
                var x = uses[u].X.ReadOnlySpan<T>().Slice(i * tRows * inF, tRows * inF);
                AtB(dy, x, g, outF, tRows, inF, accumulate: u > 0);
            }
            double s = 0;
            foreach (T v in g) { double d = double.CreateTruncating(v); s += d * d; }
            sq[i] += s;
        }
    }

    // sq[i] += Σ_{a,b} (g_a·g_b)(x_a·x_b) over the example's rows a, b of every use: block (u, v) of the two Gram matrices at a time.
    private void GramNorms<T>(List<Use> uses, double[] sq) where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        int tRows = RowsPerExample, inF = uses[0].In, outF = uses[0].Out;
        var kx = new T[tRows * tRows];
        var kg = new T[tRows * tRows];
        for (int i = 0; i < Examples; i++)
        {
            double s = 0;
            for (int u = 0; u < uses.Count; u++)
                for (int v = 0; v < uses.Count; v++)
                {
                    ABt(uses[u].X.ReadOnlySpan<T>().Slice(i * tRows * inF, tRows * inF), uses[v].X.ReadOnlySpan<T>().Slice(i * tRows * inF, tRows * inF), kx, tRows, inF, tRows);
                    ABt(uses[u].Dy.ReadOnlySpan<T>().Slice(i * tRows * outF, tRows * outF), uses[v].Dy.ReadOnlySpan<T>().Slice(i * tRows * outF, tRows * outF), kg, tRows, outF, tRows);
                    for (int j = 0; j < kx.Length; j++) s += double.CreateTruncating(kx[j]) * double.CreateTruncating(kg[j]);
                }
            sq[i] += s;
        }
    }

    /// <summary>
    /// Adds Σ_i <paramref name="coefficients"/>[i]·(example i's gradient) to every recorded weight's gradient: the
    /// rows of each kept output gradient are scaled by their example's coefficient, then dW += gᵀ·x as the Linear's
    /// own backward would. Spends the capture (the kept gradients are scaled in place).
    /// </summary>
    public void AccumulateWeighted(ReadOnlySpan<double> coefficients)
    {
        if (coefficients.Length != Examples) throw new ArgumentException($"PerExampleLinearGradients: {coefficients.Length} coefficients for {Examples} examples", nameof(coefficients));
        if (_spent) throw new InvalidOperationException("PerExampleLinearGradients: already accumulated");
        _spent = true;
        int tRows = RowsPerExample, rows = Examples * tRows;
        foreach (var (p, uses) in _uses)
        {
            Tensor grad = p.Variable.EnsureGrad();
            foreach (var use in uses)
            {
                if (grad.DType == DType.F64)
                {
                    var dy = use.Dy.Span<double>();
                    for (int i = 0; i < Examples; i++) Scale(dy.Slice(i * tRows * use.Out, tRows * use.Out), coefficients[i]);
                    GemmReference.AtB<double>(dy, use.X.ReadOnlySpan<double>(), grad.Span<double>(), use.Out, rows, use.In, accumulate: true);
                }
                else
                {
                    var dy = use.Dy.Span<float>();
                    for (int i = 0; i < Examples; i++) System.Numerics.Tensors.TensorPrimitives.Multiply(dy.Slice(i * tRows * use.Out, tRows * use.Out), (float)coefficients[i], dy.Slice(i * tRows * use.Out, tRows * use.Out));
                    Gemm.AtB<float>(dy, use.X.ReadOnlySpan<float>(), grad.Span<float>(), use.Out, rows, use.In, accumulate: true);
                }
            }
        }
    }

    private static void Scale(Span<double> s, double c)
    {
        for (int j = 0; j < s.Length; j++) s[j] *= c;
    }

    private static void AtB<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> c, int m, int k, int n, bool accumulate) where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float))
            Gemm.AtB<float>(System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>(a), System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>(b), System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>(c), m, k, n, accumulate);
        else GemmReference.AtB(a, b, c, m, k, n, accumulate);
    }

    private static void ABt<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> c, int m, int k, int n) where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float))
            Gemm.ABt<float>(System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>(a), System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>(b), System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>(c), m, k, n);
        else GemmReference.ABt(a, b, c, m, k, n);
    }

    /// <summary>Frees the kept copies.</summary>
    public void Dispose()
    {
        foreach (var t in _owned) t.Dispose();
        _owned.Clear();
        _inputCopies.Clear();
        _uses.Clear();
    }
}
