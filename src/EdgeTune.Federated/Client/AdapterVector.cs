using EdgeTune.Adapters;
using EdgeTune.Federated.Aggregation;
using EdgeTune.Tensors;

namespace EdgeTune.Federated.Client;

/// <summary>A LoRA adapter's parameters as one flat float vector in a fixed order (the adapter's PEFT-named
/// tensors in model order): the <see cref="UpdateLayout"/> federated clients and server agree on.</summary>
public static class AdapterVector
{
    public static UpdateLayout LayoutOf(LoraAdapter adapter)
    {
        ArgumentNullException.ThrowIfNull(adapter);
        return new UpdateLayout(adapter.Parameters.Select(p => (p.Name, p.Value.Shape.ToArray())));
    }

    /// <summary>The adapter's current values, flat.</summary>
    public static float[] Read(LoraAdapter adapter)
    {
        var v = new float[adapter.ParameterCount];
        long o = 0;
        foreach (var p in adapter.Parameters)
        {
            if (p.Value.DType == DType.F64)
            {
                var s = p.Value.Span<double>();
                for (int i = 0; i < s.Length; i++) v[o + i] = (float)s[i];
            }
            else p.Value.Span<float>().CopyTo(v.AsSpan((int)o));
            o += p.ElementCount;
        }
        return v;
    }

    /// <summary>Overwrites the adapter's values with <paramref name="values"/> (layout order).</summary>
    public static void Write(LoraAdapter adapter, ReadOnlySpan<float> values)
    {
        if (values.Length != adapter.ParameterCount)
            throw new ShapeException($"AdapterVector.Write: {values.Length} values for an adapter of {adapter.ParameterCount} parameters");
        int o = 0;
        foreach (var p in adapter.Parameters)
        {
            int n = (int)p.ElementCount;
            if (p.Value.DType == DType.F64)
            {
                var s = p.Value.Span<double>();
                for (int i = 0; i < n; i++) s[i] = values[o + i];
            }
            else values.Slice(o, n).CopyTo(p.Value.Span<float>());
            o += n;
        }
    }
}
