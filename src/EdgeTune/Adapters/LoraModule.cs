using EdgeTune.Autograd;
using EdgeTune.Tensors;

namespace EdgeTune.Adapters;

/// <summary>
/// One named adapter on one layer: A [r, in], B [out, r] (and, for DoRA, the magnitude m [out]), the scale s,
/// the dropout and its seeded random stream. Parameters carry PEFT's saved names
/// (<c>base_model.model.{layer}.lora_A.weight</c>, <c>.lora_B.weight</c>, <c>.lora_magnitude_vector</c>).
/// </summary>
public sealed class LoraModule : IDisposable
{
    internal LoraModule(string adapterName, string layerName, Parameter a, Parameter b, Parameter? magnitude,
        double alpha, double scale, double dropout, bool detachNorm, Rng dropoutRng)
    {
        AdapterName = adapterName;
        LayerName = layerName;
        A = a;
        B = b;
        Magnitude = magnitude;
        Alpha = alpha;
        Scale = scale;
        Dropout = dropout;
        DetachNorm = detachNorm;
        DropoutRng = dropoutRng;
    }

    public string AdapterName { get; }

    /// <summary>The adapted layer's <see cref="Nn.ILinear.Name"/>.</summary>
    public string LayerName { get; }

    /// <summary>A [r, in].</summary>
    public Parameter A { get; }

    /// <summary>B [out, r], zero at initialisation.</summary>
    public Parameter B { get; }

    /// <summary>DoRA's magnitude m [out] (row norms of the base weight at initialisation); null for plain LoRA.</summary>
    public Parameter? Magnitude { get; }

    public bool IsDora => Magnitude is not null;

    public int Rank => A.Value.Dim(0);

    /// <summary>α of this module (its config's α, or its alpha_pattern entry).</summary>
    public double Alpha { get; }

    /// <summary>s in W + s·B·A (α/r, or α/√r with rsLoRA).</summary>
    public double Scale { get; }

    public double Dropout { get; }

    /// <summary>DoRA: whether the row norm is a constant in backward.</summary>
    public bool DetachNorm { get; }

    /// <summary>The dropout mask stream; its <see cref="Rng.State"/> belongs in a training checkpoint.</summary>
    public Rng DropoutRng { get; }

    /// <summary>Whether the module contributes to its layer's output.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>True while the update is folded into the base weight (then the module itself adds nothing).</summary>
    public bool Merged { get; internal set; }

    /// <summary>DoRA: the row factors m/‖V‖ applied at merge time, needed to unmerge.</summary>
    internal float[]? MergedRowScale { get; set; }

    public IEnumerable<Parameter> Parameters => Magnitude is null ? [A, B] : [A, B, Magnitude];

    /// <summary>PEFT's saved name of a module tensor: <c>base_model.model.{layer}.{suffix}</c>.</summary>
    public static string PeftName(string layerName, string suffix) => $"base_model.model.{layerName}.{suffix}";

    public const string ASuffix = "lora_A.weight";
    public const string BSuffix = "lora_B.weight";
    public const string MagnitudeSuffix = "lora_magnitude_vector";

    public void Dispose()
    {
        A.Dispose();
        B.Dispose();
        Magnitude?.Dispose();
    }

    public override string ToString() => $"{AdapterName}@{LayerName} r={Rank} s={Scale}{(IsDora ? " dora" : "")}{(Merged ? " merged" : "")}{(Enabled ? "" : " disabled")}";
}
