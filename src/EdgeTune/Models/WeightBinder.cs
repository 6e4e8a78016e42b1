using EdgeTune.Autograd;
using EdgeTune.Nn;
using EdgeTune.Tensors;

namespace EdgeTune.Models;

/// <summary>
/// How a family's block gets its weights while it is built: <see cref="Linear"/> and <see cref="Vector"/> name a
/// tensor (full HF name) and its shape. The same construction code lists a config's tensors (for loading,
/// export and the planner: <see cref="Recording"/>) and builds a live model over loaded parameters.
/// </summary>
public abstract class WeightBinder
{
    /// <summary>A projection <paramref name="name"/> (without ".weight") [out, in], with an optional bias [out].</summary>
    public abstract ILinear Linear(string name, int outFeatures, int inFeatures, bool bias = false);

    /// <summary>A vector parameter such as a norm weight (full name) of <paramref name="length"/>.</summary>
    public abstract Parameter Vector(string name, int length);

    /// <summary>A binder that records every (name, shape) and returns shape-only layers.</summary>
    public static RecordingBinder Recording() => new();
}

/// <summary>Records names and shapes; its layers have shapes but no weights (the planner runs them shape-only).</summary>
public sealed class RecordingBinder : WeightBinder, IDisposable
{
    private readonly List<(string Name, int[] Shape)> _tensors = [];
    private readonly List<Parameter> _vectors = [];

    public IReadOnlyList<(string Name, int[] Shape)> Tensors => _tensors;

    public override ILinear Linear(string name, int outFeatures, int inFeatures, bool bias = false)
    {
        _tensors.Add((name + ".weight", [outFeatures, inFeatures]));
        if (bias) _tensors.Add((name + ".bias", [outFeatures]));
        return new ShapeLinear(name, inFeatures, outFeatures);
    }

    public override Parameter Vector(string name, int length)
    {
        _tensors.Add((name, [length]));
        var p = new Parameter(name, Tensor.Zeros(DType.F32, [length], name), trainable: false);
        _vectors.Add(p);
        return p;
    }

    /// <summary>Frees the small vectors handed out (the layers built over them must not be used after).</summary>
    public void Dispose()
    {
        foreach (var p in _vectors) p.Dispose();
        _vectors.Clear();
    }
}

/// <summary>Binds to parameters already loaded under HF names; <paramref name="linear"/> makes each projection
/// (a plain <see cref="Nn.Linear"/>, or a quantized layer when the weight is stored quantized).</summary>
public sealed class ParameterBinder(ParameterCollection parameters, Func<string, int, int, Parameter, Parameter?, ILinear> linear) : WeightBinder
{
    public override ILinear Linear(string name, int outFeatures, int inFeatures, bool bias = false)
    {
        var w = parameters[name + ".weight"];
        Parameter? b = null;
        if (bias) b = parameters[name + ".bias"];
        return linear(name, outFeatures, inFeatures, w, b);
    }

    public override Parameter Vector(string name, int length) => parameters[name];
}
