using EdgeTune.Autograd;
using EdgeTune.Tensors;

namespace EdgeTune.Nn;

/// <summary>The plain linear layer: a weight [out, in] stored as the checkpoint stores it (F32, F16 or
/// BF16) and an optional F32 bias [out].</summary>
public sealed class Linear : ILinear
{
    public Linear(string name, Parameter weight, Parameter? bias = null)
    {
        if (weight.Value.Rank != 2) throw new ShapeException($"Linear '{name}': weight must be 2-D [out, in], got {weight.Value.ShapeString}");
        if (bias is not null && (bias.Value.Rank != 1 || bias.Value.Dim(0) != weight.Value.Dim(0)))
            throw new ShapeException($"Linear '{name}': bias {bias.Value.ShapeString} does not match weight {weight.Value.ShapeString}");
        Name = name;
        Weight = weight;
        Bias = bias;
    }

    public string Name { get; }
    public Parameter Weight { get; }
    public Parameter? Bias { get; }
    public int InFeatures => Weight.Value.Dim(1);
    public int OutFeatures => Weight.Value.Dim(0);

    public IEnumerable<Parameter> Parameters => Bias is null ? [Weight] : [Weight, Bias];

    public void Forward(ReadOnlySpan<float> x, Span<float> y, int rows, bool accumulate = false)
    {
        LinearKernel.Forward(x, Weight.Value, y, rows, accumulate);
        if (Bias is not null) Elementwise.AddRowBias(y, Bias.Value.ReadOnlySpan<float>(), rows, OutFeatures);
    }

    public Variable Forward(Tape tape, Variable x) => tape.Linear(x, Weight, Bias);
}
