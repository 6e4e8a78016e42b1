using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Autograd;
using EdgeTune.Compression.Quantization.Qat;
using EdgeTune.Models;
using EdgeTune.Nn;
using EdgeTune.Tensors;

namespace EdgeTune.Compression.Quantization.Calibration;

/// <summary>
/// Per input channel mean squared activation of every projection of a model, a_j = E[x_j²], gathered by
/// running the inference forward over calibration text with each projection wrapped in a recording
/// <see cref="ILinear"/>. These are the importances of <see cref="WeightedQuantizer"/>.
/// </summary>
public sealed class ActivationStats
{
    private readonly Dictionary<string, float[]> _meanSquares;

    private ActivationStats(Dictionary<string, float[]> meanSquares, long tokens)
    {
        _meanSquares = meanSquares;
        Tokens = tokens;
    }

    /// <summary>Tokens the statistics were gathered over.</summary>
    public long Tokens { get; }

    /// <summary>Projection names (e.g. "model.layers.0.self_attn.q_proj") with statistics.</summary>
    public IReadOnlyCollection<string> Layers => _meanSquares.Keys;

    /// <summary>E[x_j²] over the calibration tokens for the inputs of projection <paramref name="layerName"/>.</summary>
    public float[] MeanSquares(string layerName) =>
        _meanSquares.TryGetValue(layerName, out var a) ? a : throw new KeyNotFoundException($"ActivationStats: no statistics for '{layerName}'");

    /// <summary>Runs <paramref name="model"/> over each sequence (fresh KV cache each, at most the model's
    /// positions) and records the inputs of all seven projections of every layer. The model is left as found.</summary>
    public static ActivationStats Collect(DecoderModel model, IEnumerable<int[]> sequences)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(sequences);
        var recorders = new List<(string Path, Recorder R)>();
        foreach (var (path, layer) in model.Projections().ToList())
        {
            var r = new Recorder(layer);
            recorders.Add((path, r));
            model.SetProjection(path, r);
        }
        long tokens = 0;
        try
        {
            var logits = new float[model.VocabSize];
            foreach (var seq in sequences)
            {
                if (seq.Length == 0) continue;
                if (seq.Length > model.MaxPositions)
                    throw new ArgumentException($"ActivationStats.Collect: a sequence of {seq.Length} tokens exceeds the model's {model.MaxPositions} positions");
                using var cache = model.CreateCache(seq.Length);
                model.Forward(seq, cache, logits);
                tokens += seq.Length;
            }
        }
        finally
        {
            foreach (var (path, r) in recorders) model.SetProjection(path, r.Inner);
        }
        if (tokens == 0) throw new ArgumentException("ActivationStats.Collect: no calibration tokens");
        var stats = new Dictionary<string, float[]>();
        foreach (var (_, r) in recorders)
        {
            var a = new float[r.Inner.InFeatures];
            for (int j = 0; j < a.Length; j++) a[j] = (float)(r.SumSquares[j] / r.Rows);
            stats[r.Inner.Name] = a;
        }
        return new ActivationStats(stats, tokens);
    }

    /// <summary>Wraps the statistics of given layers (for tests and saved statistics).</summary>
    public static ActivationStats FromMeanSquares(IReadOnlyDictionary<string, float[]> meanSquares, long tokens) =>
        new(meanSquares.ToDictionary(p => p.Key, p => (float[])p.Value.Clone()), tokens);

    /// <summary>Replaces every projection's F32 weight whose rows fit <paramref name="format"/> by its dequantized
    /// importance-weighted quantization (or plain rounding when <paramref name="weighted"/> is false), in place, so
    /// the model computes what the quantized model computes. Returns the names rounded.</summary>
    /// <param name="exponent">Importance a_j = E[x_j²]^exponent: 1 weighs by the expected output error, smaller
    /// values flatten the weighting towards plain (uniform) rounding.</param>
    public IReadOnlyList<string> RoundWeights(DecoderModel model, QuantFormat format, bool weighted = true, double exponent = 1.0)
    {
        if (!(exponent >= 0)) throw new ArgumentOutOfRangeException(nameof(exponent), exponent, "ActivationStats.RoundWeights: the exponent must be ≥ 0");
        const string op = "ActivationStats.RoundWeights";
        if (!weighted) return QatInjector.RoundProjections(model, format, op, (lin, w) => QatInjector.PlainRound(format, lin, w));
        return QatInjector.RoundProjections(model, format, op, (lin, w) =>
        {
            var a = MeanSquares(lin.Name);
            if (exponent != 1) a = a.Select(v => (float)Math.Pow(v, exponent)).ToArray();
            using var m = WeightedQuantizer.Quantize(w, a, format);
            m.DequantizeRows(0, m.Rows, w.Span<float>());
        });
    }

    /// <summary>Forwards to the wrapped layer and accumulates Σ_rows x_j² per input channel (inference and tape).</summary>
    private sealed class Recorder(ILinear inner) : ILinear
    {
        public ILinear Inner { get; } = inner;
        public double[] SumSquares { get; } = new double[inner.InFeatures];
        public long Rows { get; private set; }

        public string Name => Inner.Name;
        public int InFeatures => Inner.InFeatures;
        public int OutFeatures => Inner.OutFeatures;
        public IEnumerable<Parameter> Parameters => Inner.Parameters;

        public void Forward(ReadOnlySpan<float> x, Span<float> y, int rows, bool accumulate = false)
        {
            Record(x, rows);
            Inner.Forward(x, y, rows, accumulate);
        }

        public Variable Forward(Tape tape, Variable x)
        {
            if (x.DType == DType.F32) Record(x.Value.ReadOnlySpan<float>(), checked((int)(x.ElementCount / InFeatures)));
            return Inner.Forward(tape, x);
        }

        private void Record(ReadOnlySpan<float> x, int rows)
        {
            int n = InFeatures;
            if (rows < 0 || x.Length < (long)rows * n)
                throw new ShapeException($"ActivationStats recorder '{Name}': x has {x.Length} elements; expected {rows}×{n}");
            for (int r = 0; r < rows; r++)
            {
                var row = x.Slice(r * n, n);
                for (int j = 0; j < n; j++) SumSquares[j] += (double)row[j] * row[j];
            }
            Rows += rows;
        }
    }
}
