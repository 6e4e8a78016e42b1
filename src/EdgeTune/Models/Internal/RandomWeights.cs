using EdgeTune.Autograd;
using EdgeTune.Tensors;

namespace EdgeTune.Models.Internal;

/// <summary>Random parameters for models built from shapes alone (tests, benches, demos): every matrix N(0, std), vectors
/// named "*bias" zero and other vectors (norm weights) one, drawn in the order given from one seeded <see cref="Rng"/>.</summary>
internal static class RandomWeights
{
    public static ParameterCollection Create(IEnumerable<(string Name, int[] Shape)> tensors, ulong seed, float std, bool trainable, DType dtype)
    {
        var rng = new Rng(seed);
        var parameters = new ParameterCollection();
        foreach (var (name, shape) in tensors)
        {
            var t = Tensor.Zeros(DType.F32, shape, name);
            if (shape.Length == 1) t.Span<float>().Fill(name.EndsWith("bias", StringComparison.Ordinal) ? 0f : 1f);
            else rng.FillGaussian(t.Span<float>(), 0f, std);
            if (dtype != DType.F32) { var converted = t.To(dtype); t.Dispose(); t = converted; }
            parameters.Add(new Parameter(name, t, trainable));
        }
        return parameters;
    }
}
