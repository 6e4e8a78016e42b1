using EdgeTune.Autograd;
using EdgeTune.Nn;

namespace EdgeTune.Compression.Pruning.Internal;

/// <summary>An <see cref="ILinear"/> that passes everything to the layer it wraps and, on the inference path,
/// adds each input channel's squared activations to <see cref="SumSquares"/> (accumulated in double).</summary>
internal sealed class RecordingLinear(ILinear inner) : ILinear
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
        int n = InFeatures;
        if (rows < 0 || x.Length < (long)rows * n)
            throw new EdgeTune.Tensors.ShapeException($"RecordingLinear '{Name}': x has {x.Length} elements; expected {rows}×{n}");
        var acc = SumSquares;
        for (int r = 0; r < rows; r++)
        {
            var row = x.Slice(r * n, n);
            for (int j = 0; j < n; j++) acc[j] += (double)row[j] * row[j];
        }
        Rows += rows;
        Inner.Forward(x, y, rows, accumulate);
    }

    public Variable Forward(Tape tape, Variable x) => Inner.Forward(tape, x);
}
