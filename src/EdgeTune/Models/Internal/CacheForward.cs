using EdgeTune.Autograd;
using EdgeTune.Generation;
using EdgeTune.Nn;
using EdgeTune.Tensors;

namespace EdgeTune.Models.Internal;

/// <summary>An activation of the cache runner: rows × cols floats in a scratch buffer, from <see cref="Offset"/>.</summary>
internal readonly record struct Act(float[] Buffer, int Rows, int Cols, int Offset = 0)
{
    public Span<float> Span => Buffer.AsSpan(Offset, Rows * Cols);
}

/// <summary>
/// <see cref="IForward{TX}"/> for inference over a <see cref="KvCache"/> (batch 1, T new tokens at positions
/// pos0..pos0+T−1): kernels called directly on scratch buffers. Every op writes a fresh buffer (values are never
/// changed in place); buffers are handed out in call order and reused by the next layer (the same op sequence),
/// so after the first call nothing is allocated. Attention appends k and v to the cache layer first.
/// </summary>
internal sealed class CacheForward : IForward<Act>
{
    private readonly List<float[]> _slots = [];
    private float[] _residual = [];
    private float[] _rstd = [];
    private int _next;
    private KvCache _cache = null!;
    private int _pos0, _rows;

    public void Begin(KvCache cache, int pos0, int rows)
    {
        (_cache, _pos0, _rows) = (cache, pos0, rows);
        _next = 0;
    }

    /// <summary>Scratch reuse starts over (the previous layer's values are dead, except the residual).</summary>
    public void BeginLayer() => _next = 0;

    /// <summary>The residual stream buffer (T, C), kept across layers.</summary>
    public Act Residual(int cols)
    {
        if (_residual.Length < _rows * cols) _residual = new float[_rows * cols];
        return new Act(_residual, _rows, cols);
    }

    private Act New(int rows, int cols)
    {
        int need = rows * cols;
        if (_next == _slots.Count) _slots.Add(new float[need]);
        else if (_slots[_next].Length < need) _slots[_next] = new float[need];
        return new Act(_slots[_next++], rows, cols);
    }

    public Act Linear(ILinear layer, Act x)
    {
        var y = New(x.Rows, layer.OutFeatures);
        layer.Forward(x.Span, y.Span, x.Rows);
        return y;
    }

    public Act RmsNorm(Act x, Parameter weight, double eps)
    {
        int len = checked((int)weight.Value.ElementCount), groups = x.Rows * x.Cols / len;
        var y = New(x.Rows, x.Cols);
        if (_rstd.Length < groups) _rstd = new float[groups];
        Tensors.RmsNorm.Forward(x.Span, weight.Value.ReadOnlySpan<float>(), y.Span, _rstd.AsSpan(0, groups), groups, len, (float)eps);
        return y;
    }

    public Act Rope(Act x, int heads, int headDim, RopeTable table, RopeStyle style)
    {
        var y = New(x.Rows, x.Cols);
        x.Span.CopyTo(y.Span);
        Tensors.Rope.Forward(y.Span, x.Rows, heads, headDim, _pos0, table, style);
        return y;
    }

    public Act Attention(Act q, Act k, Act v, in AttentionSpec s)
    {
        int kvDim = s.HeadsKv * s.HeadDim;
        k.Span.CopyTo(_cache.Keys(s.Layer).Slice(_pos0 * kvDim, _rows * kvDim));
        v.Span.CopyTo(_cache.Values(s.Layer).Slice(_pos0 * kvDim, _rows * kvDim));
        var y = New(q.Rows, q.Cols);
        Tensors.Attention.Decode(q.Span, _cache.Keys(s.Layer), _cache.Values(s.Layer), y.Span, default, 1, _rows, _pos0, _cache.Capacity,
            s.HeadsQ, s.HeadsKv, s.HeadDim, (float)s.Scale, s.Window);
        return y;
    }

    public Act Add(Act a, Act b)
    {
        var y = New(a.Rows, a.Cols);
        Elementwise.Add(a.Span, b.Span, y.Span);
        return y;
    }

    public Act SwiGlu(Act gate, Act up)
    {
        var y = New(gate.Rows, gate.Cols);
        Elementwise.SwiGlu(gate.Span, up.Span, y.Span);
        return y;
    }

    public Act GeGlu(Act gate, Act up)
    {
        var y = New(gate.Rows, gate.Cols);
        Elementwise.Gelu(gate.Span, y.Span, GeluApproximation.Tanh);
        Elementwise.Mul(y.Span, up.Span, y.Span);
        return y;
    }

    public Act Columns(Act x, int start, int count)
    {
        var y = New(x.Rows, count);
        var src = x.Span;
        var dst = y.Span;
        for (int r = 0; r < x.Rows; r++) src.Slice(r * x.Cols + start, count).CopyTo(dst.Slice(r * count, count));
        return y;
    }

    public Act Scale(Act x, double s)
    {
        var y = New(x.Rows, x.Cols);
        Elementwise.Scale(x.Span, (float)s, y.Span);
        return y;
    }
}
