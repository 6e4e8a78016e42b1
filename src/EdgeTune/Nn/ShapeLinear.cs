using EdgeTune.Autograd;

namespace EdgeTune.Nn;

/// <summary>A projection with shapes and a name but no weights: what the memory planner runs a block over.</summary>
public sealed class ShapeLinear(string name, int inFeatures, int outFeatures) : ILinear
{
    public string Name { get; } = name;
    public int InFeatures { get; } = inFeatures;
    public int OutFeatures { get; } = outFeatures;
    public IEnumerable<Parameter> Parameters => [];

    public void Forward(ReadOnlySpan<float> x, Span<float> y, int rows, bool accumulate = false) =>
        throw new InvalidOperationException($"ShapeLinear '{Name}' has no weights; it only describes shapes");

    public Variable Forward(Tape tape, Variable x) =>
        throw new InvalidOperationException($"ShapeLinear '{Name}' has no weights; it only describes shapes");
}
