using EdgeTune.Adapters.Internal;
using EdgeTune.Autograd;
using EdgeTune.Nn;
using EdgeTune.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace EdgeTune.Adapters;

/// <summary>
/// An <see cref="ILinear"/> that wraps any other (kept frozen) and adds named low-rank updates:
/// y = base(x) + Σ_active s·(drop(x)·Aᵀ)·Bᵀ. A DoRA module instead gives
/// y = m ⊙ (x·Wᵀ + s·x·Aᵀ·Bᵀ)/‖W + s·B·A‖_row (+ bias); it needs a plain <see cref="Linear"/> base
/// and must be the only active module of its layer.
/// </summary>
/// <remarks>
/// Active modules: <see cref="LoraModule.Enabled"/>, not <see cref="LoraModule.Merged"/>, and the layer's
/// own <see cref="Enabled"/>. Dropout applies only on recording tapes (training), with each module's seeded
/// stream. Inference needs F32 adapter weights; the tape path runs F32 or (for gradient checks) F64.
/// DoRA inference recomputes the row norms on every call (r·out·in extra multiply-adds): merge for fast decoding.
/// </remarks>
public sealed class LoraLinear : ILinear
{
    private readonly List<LoraModule> _modules = [];

    public LoraLinear(ILinear baseLayer)
    {
        ArgumentNullException.ThrowIfNull(baseLayer);
        if (baseLayer is LoraLinear) throw new ArgumentException($"LoraLinear: layer '{baseLayer.Name}' is already a LoraLinear; add modules to it instead");
        Base = baseLayer;
    }

    /// <summary>The wrapped layer (a new <see cref="Linear"/> after merging into a read-only mapped weight).</summary>
    public ILinear Base { get; private set; }

    public string Name => Base.Name;
    public int InFeatures => Base.InFeatures;
    public int OutFeatures => Base.OutFeatures;

    /// <summary>False bypasses every module (the base alone).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Modules by adapter name, in the order added.</summary>
    public IReadOnlyList<LoraModule> Modules => _modules;

    public LoraModule? this[string adapterName] => _modules.Find(m => m.AdapterName == adapterName);

    public IEnumerable<Parameter> Parameters => Base.Parameters.Concat(_modules.SelectMany(m => m.Parameters));

    /// <summary>Adds a module; its shapes must fit the base and its adapter name must be new on this layer.</summary>
    public void Add(LoraModule module)
    {
        ArgumentNullException.ThrowIfNull(module);
        if (this[module.AdapterName] is not null)
            throw new ArgumentException($"LoraLinear '{Name}': an adapter named '{module.AdapterName}' is already attached");
        var a = module.A.Value;
        var b = module.B.Value;
        if (a.Rank != 2 || a.Dim(1) != InFeatures || b.Rank != 2 || b.Dim(0) != OutFeatures || b.Dim(1) != a.Dim(0))
            throw new ShapeException($"LoraLinear '{Name}' [{OutFeatures}, {InFeatures}]: adapter '{module.AdapterName}' has A {a.ShapeString} and B {b.ShapeString}; expected A [r, {InFeatures}] and B [{OutFeatures}, r]");
        if (module.Magnitude is { } m && (m.Value.Rank != 1 || m.Value.Dim(0) != OutFeatures))
            throw new ShapeException($"LoraLinear '{Name}': DoRA magnitude {m.Value.ShapeString} must be [{OutFeatures}]");
        if (module.IsDora && Base is not Linear)
            throw new ArgumentException($"LoraLinear '{Name}': DoRA needs a plain Linear base, not {Base.GetType().Name}");
        _modules.Add(module);
    }

    /// <summary>Detaches (without disposing) the module of <paramref name="adapterName"/>; false when absent.
    /// A merged module must be unmerged first.</summary>
    public bool Remove(string adapterName)
    {
        var m = this[adapterName];
        if (m is null) return false;
        if (m.Merged) throw new InvalidOperationException($"LoraLinear '{Name}': adapter '{adapterName}' is merged into the base weight; unmerge it before removing it");
        return _modules.Remove(m);
    }

    private List<LoraModule> Active()
    {
        var list = new List<LoraModule>(_modules.Count);
        if (!Enabled) return list;
        foreach (var m in _modules) if (m.Enabled && !m.Merged) list.Add(m);
        if (list.Count > 1 && list.Exists(m => m.IsDora))
            throw new InvalidOperationException($"LoraLinear '{Name}': a DoRA adapter must be the only active one ({string.Join(", ", list.Select(m => m.AdapterName))} are active)");
        return list;
    }

    public void Forward(ReadOnlySpan<float> x, Span<float> y, int rows, bool accumulate = false)
    {
        int n = InFeatures, o = OutFeatures;
        if (rows < 0 || x.Length < (long)rows * n || y.Length < (long)rows * o)
            throw new ShapeException($"LoraLinear '{Name}': x has {x.Length} and y {y.Length} elements; expected {rows}×{n} and {rows}×{o}");
        x = x[..(rows * n)];
        y = y[..(rows * o)];
        var active = Active();
        if (active.Count == 1 && active[0].IsDora)
        {
            DoraForward(active[0], x, y, rows, accumulate);
            return;
        }
        Base.Forward(x, y, rows, accumulate);
        foreach (var m in active) AddUpdate(m, x, y, rows);
    }

    // y[rows, out] += s·(x·Aᵀ)·Bᵀ
    private void AddUpdate(LoraModule m, ReadOnlySpan<float> x, Span<float> y, int rows)
    {
        RequireF32(m);
        int r = m.Rank;
        var h = new float[rows * r];
        Gemm.ABt(x, m.A.Value.ReadOnlySpan<float>(), h, rows, InFeatures, r);
        TensorPrimitives.Multiply(h, (float)m.Scale, h);
        Gemm.ABt<float>(h, m.B.Value.ReadOnlySpan<float>(), y, rows, r, OutFeatures, accumulate: true);
    }

    private void DoraForward(LoraModule m, ReadOnlySpan<float> x, Span<float> y, int rows, bool accumulate)
    {
        RequireF32(m);
        var lin = (Linear)Base;
        int o = OutFeatures;
        var z = new float[rows * o];
        LinearKernel.Forward(x, lin.Weight.Value, z, rows);
        AddUpdate(m, x, z, rows);
        float[] c = DoraRowScale(m, lin);
        ReadOnlySpan<float> bias = lin.Bias is null ? default : lin.Bias.Value.ReadOnlySpan<float>();
        for (int i = 0; i < rows; i++)
        {
            var zr = z.AsSpan(i * o, o);
            TensorPrimitives.Multiply(zr, c, zr);
            if (!bias.IsEmpty) TensorPrimitives.Add(zr, bias, zr);
            var yr = y.Slice(i * o, o);
            if (accumulate) TensorPrimitives.Add(yr, zr, yr); else zr.CopyTo(yr);
        }
    }

    /// <summary>m[o] / ‖W[o, :] + s·(B·A)[o, :]‖ in F32.</summary>
    private float[] DoraRowScale(LoraModule m, Linear lin)
    {
        using var v = DoraScaleOp.ComputeV(lin.Weight.Value, m.A.Value, m.B.Value, m.Scale, f64: false);
        double[] norm = DoraScaleOp.RowNorms(v, OutFeatures, InFeatures);
        var mag = m.Magnitude!.Value.ReadOnlySpan<float>();
        var c = new float[OutFeatures];
        for (int i = 0; i < c.Length; i++) c[i] = mag[i] / (float)norm[i];
        return c;
    }

    private void RequireF32(LoraModule m)
    {
        if (m.A.Value.DType != DType.F32 || m.B.Value.DType != DType.F32 || (m.Magnitude is { } g && g.Value.DType != DType.F32))
            throw new ShapeException($"LoraLinear '{Name}': inference needs F32 adapter weights; adapter '{m.AdapterName}' is {m.A.Value.DType}");
    }

    public Variable Forward(Tape tape, Variable x)
    {
        var active = Active();
        if (active.Count == 1 && active[0].IsDora)
        {
            var m = active[0];
            var lin = (Linear)Base;
            var sum = tape.Add(tape.Linear(x, lin.Weight), Update(tape, m, x));
            var c = tape.Apply(new DoraScaleOp(lin.Weight.Variable, m.A.Variable, m.B.Variable, m.Magnitude!.Variable, m.Scale, m.DetachNorm));
            return tape.ChannelScale(sum, c, lin.Bias?.Variable);
        }
        var y = Base.Forward(tape, x);
        foreach (var m in active)
        {
            // the update is added where it is made: y + s·(drop(x)·Aᵀ)·Bᵀ, no (…, out) intermediate on the tape
            var h = tape.Linear(m.Dropout > 0 && tape.IsRecording ? tape.Dropout(x, m.Dropout, m.DropoutRng) : x, m.A);
            y = tape.LowRankAdd(y, h, m.B.Variable, m.Scale);
        }
        return y;
    }

    // DoRA's update, Linear(s · Linear(drop(x), A), B): (…, in) → (…, r) → (…, out). The scale applies to the
    // rank-r intermediate (as in inference), out/r times less work than scaling the output.
    private static Variable Update(Tape tape, LoraModule m, Variable x)
    {
        var h = m.Dropout > 0 && tape.IsRecording ? tape.Dropout(x, m.Dropout, m.DropoutRng) : x;
        return tape.Linear(tape.Scale(tape.Linear(h, m.A), m.Scale), m.B);
    }

    /// <summary>Folds <paramref name="m"/> into the base weight. A read-only (mapped) or F16/BF16 weight is first
    /// copied into a new F32 parameter, which replaces the old one in <paramref name="owner"/> when given.</summary>
    internal void Merge(LoraModule m, ParameterCollection? owner)
    {
        if (m.Merged) return;
        CheckMergeable(m);
        var lin = (Linear)Base;
        if (lin.Weight.Value.IsReadOnly || lin.Weight.Value.DType != DType.F32)
        {
            var w0 = lin.Weight.Value;
            var copy = new Parameter(lin.Weight.Name, w0.DType == DType.F32 ? w0.Clone() : w0.To(DType.F32), trainable: false);
            if (owner is not null && owner.Contains(copy.Name)) owner.Replace(copy).Dispose();
            Base = lin = new Linear(Name, copy, lin.Bias);
        }
        var w = lin.Weight.Value.Span<float>();
        int o = OutFeatures, n = InFeatures;
        if (m.IsDora)
        {
            float[] c = DoraRowScale(m, lin);
            AddDelta(m, w, +1);
            for (int i = 0; i < o; i++) TensorPrimitives.Multiply(w.Slice(i * n, n), c[i], w.Slice(i * n, n));
            m.MergedRowScale = c;
        }
        else AddDelta(m, w, +1);
        m.Merged = true;
    }

    /// <summary>Throws unless <paramref name="m"/> can be folded into this layer's base (a plain F32, F16 or BF16
    /// <see cref="Linear"/>; the latter two are widened to F32 when merged).</summary>
    internal void CheckMergeable(LoraModule m)
    {
        if (Base is not Linear lin)
            throw new InvalidOperationException($"Merge: layer '{Name}' wraps a {Base.GetType().Name}, not a plain Linear with a weight to fold into (load the model with its projections dequantized)");
        if (lin.Weight.Value.DType is not (DType.F32 or DType.F16 or DType.BF16))
            throw new InvalidOperationException($"Merge: layer '{Name}' has a {lin.Weight.Value.DType} weight; only an F32, F16 or BF16 base weight can take the update (load or convert the model to F32)");
        RequireF32(m);
    }

    /// <summary>Takes <paramref name="m"/>'s update back out of the base weight (equal within float rounding).</summary>
    internal void Unmerge(LoraModule m)
    {
        if (!m.Merged) return;
        var lin = (Linear)Base;
        var w = lin.Weight.Value.Span<float>();
        int n = InFeatures;
        if (m.MergedRowScale is { } c)
        {
            for (int i = 0; i < c.Length; i++) TensorPrimitives.Divide(w.Slice(i * n, n), c[i], w.Slice(i * n, n));
            m.MergedRowScale = null;
        }
        AddDelta(m, w, -1);
        m.Merged = false;
    }

    // w += sign·s·B·A
    private void AddDelta(LoraModule m, Span<float> w, int sign)
    {
        var delta = new float[OutFeatures * InFeatures];
        Gemm.AB<float>(m.B.Value.ReadOnlySpan<float>(), m.A.Value.ReadOnlySpan<float>(), delta, OutFeatures, m.Rank, InFeatures);
        TensorPrimitives.MultiplyAdd(delta, (float)(sign * m.Scale), w, w);
    }
}
