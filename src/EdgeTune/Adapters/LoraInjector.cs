using EdgeTune.Adapters.Internal;
using EdgeTune.Autograd;
using EdgeTune.Models;
using EdgeTune.Models.Bert;
using EdgeTune.Nn;
using EdgeTune.Tensors;

namespace EdgeTune.Adapters;

/// <summary>Applies a <see cref="LoraConfig"/> to a model's module tree (a <see cref="DecoderModel"/> or a
/// <see cref="BertEncoder"/>): each matching projection is wrapped in a <see cref="LoraLinear"/> (or gets one more module
/// when already wrapped), swapped in by its path, and the base is frozen.</summary>
public static class LoraInjector
{
    /// <summary>
    /// Wraps every projection whose name the config targets, adding a module named <paramref name="adapterName"/>
    /// with the layer's own r and α (<see cref="LoraConfig.RankFor"/>, <see cref="LoraConfig.AlphaFor"/>):
    /// A [r, in] from the config's init and seed (targets in model order, one stream), B [out, r] = 0 (so the
    /// model's output is unchanged), DoRA's m = the base weight's row norms. A, B, m are F64 when the model is
    /// (gradient checks), else F32. With <paramref name="freezeBase"/> every model parameter is frozen first.
    /// </summary>
    /// <exception cref="ArgumentException">No projection matches, or the adapter name is already used.</exception>
    public static LoraAdapter Apply(DecoderModel model, LoraConfig config, string adapterName = "default", bool freezeBase = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Apply(model, model.Parameters, model.Layers.Count, model.Embed.Value.DType, config, adapterName, freezeBase);
    }

    /// <summary>As <see cref="Apply(DecoderModel, LoraConfig, string, bool)"/> for an encoder: targets are BERT's projection
    /// names (<c>query</c>, <c>key</c>, <c>value</c>, <c>dense</c>, or globs such as <c>*.attention.self.*</c>) and
    /// <see cref="LoraConfig.LayerRange"/> counts <c>encoder.layer.{i}</c>.</summary>
    public static LoraAdapter Apply(BertEncoder encoder, LoraConfig config, string adapterName = "default", bool freezeBase = true)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        return Apply(encoder, encoder.Parameters, encoder.Layers.Count, encoder.DType, config, adapterName, freezeBase);
    }

    private static LoraAdapter Apply(IModule model, ParameterCollection parameters, int layers, DType modelDType, LoraConfig config, string adapterName, bool freezeBase)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentException.ThrowIfNullOrEmpty(adapterName);
        config.Validate();
        var targets = Targets(model, config).ToList();
        if (targets.Count == 0)
            throw new ArgumentException($"LoRA: no projection of the model matches target_modules [{string.Join(", ", config.TargetModules)}]" +
                (config.LayerRange is { } r ? $" in layers {r.First}..{r.Last}" : "") + $" (the model has {layers} layers; names look like '{ModuleTree.All<ILinear>(model).First().Module.Name}')");
        foreach (var (_, cur) in targets)
            if (cur is LoraLinear l && l[adapterName] is not null)
                throw new ArgumentException($"LoRA: layer '{cur.Name}' already has an adapter named '{adapterName}'");

        DType dtype = modelDType == DType.F64 ? DType.F64 : DType.F32;
        if (freezeBase)
            foreach (var p in parameters) p.Trainable = false;
        var rng = new Rng(config.InitSeed);
        var entries = new List<(string, LoraLinear, LoraModule)>();
        foreach (var (path, cur) in targets)
        {
            var lora = cur as LoraLinear ?? new LoraLinear(cur);
            var module = CreateModule(adapterName, lora.Base, config, dtype, rng);
            lora.Add(module);
            ModuleTree.Replace(model, path, lora);
            entries.Add((path, lora, module));
        }
        return new LoraAdapter(adapterName, config, model, parameters, entries);
    }

    /// <summary>The exact number of trainable adapter elements <see cref="Apply(DecoderModel, LoraConfig, string, bool)"/> would create: Σ r·(in + out)
    /// over the targets, each with its own r (+ out each for DoRA).</summary>
    public static long CountParameters(DecoderModel model, LoraConfig config)
    {
        config.Validate();
        return Targets(model, config).Sum(t => (long)config.RankFor(t.Layer.Name) * (t.Layer.InFeatures + t.Layer.OutFeatures) + (config.UseDora ? t.Layer.OutFeatures : 0));
    }

    private static IEnumerable<(string Path, ILinear Layer)> Targets(IModule model, LoraConfig config) =>
        ModuleTree.All<ILinear>(model).Where(p => config.Targets(p.Module.Name, ModuleTree.LayerIndex(p.Path)));

    private static LoraModule CreateModule(string adapterName, ILinear baseLayer, LoraConfig config, DType dtype, Rng rng)
    {
        string name = baseLayer.Name;
        int r = config.RankFor(name), inF = baseLayer.InFeatures, outF = baseLayer.OutFeatures;
        var a = Tensor.Zeros(dtype, [r, inF], LoraModule.PeftName(name, LoraModule.ASuffix));
        var values = new double[r * inF];
        if (config.Init == LoraInit.Gaussian)
            for (int k = 0; k < values.Length; k++) values[k] = rng.NextGaussian() / r;
        else
        {
            double bound = 1.0 / Math.Sqrt(inF);
            for (int k = 0; k < values.Length; k++) values[k] = (2 * rng.NextDouble() - 1) * bound;
        }
        Write(a, values);
        var b = Tensor.Zeros(dtype, [outF, r], LoraModule.PeftName(name, LoraModule.BSuffix));
        Parameter? magnitude = null;
        if (config.UseDora)
        {
            if (baseLayer is not Linear lin)
                throw new ArgumentException($"DoRA: layer '{name}' is a {baseLayer.GetType().Name}; DoRA needs a plain Linear base");
            var w = lin.Weight.Value;
            using var wide = w.DType is DType.F32 or DType.F64 ? null : w.To(DType.F32);
            double[] norms = DoraScaleOp.RowNorms(wide ?? w, outF, inF);
            var m = Tensor.Zeros(dtype, [outF], LoraModule.PeftName(name, LoraModule.MagnitudeSuffix));
            Write(m, norms);
            magnitude = new Parameter(m.Name, m, trainable: true);
        }
        return new LoraModule(adapterName, name,
            new Parameter(a.Name, a, trainable: true), new Parameter(b.Name, b, trainable: true), magnitude,
            config.AlphaFor(name), config.ScaleFor(name), config.Dropout, config.DoraDetachNorm, rng.Fork());
    }

    internal static void Write(Tensor t, ReadOnlySpan<double> values)
    {
        if (t.DType == DType.F64) values.CopyTo(t.Span<double>());
        else
        {
            var s = t.Span<float>();
            for (int i = 0; i < s.Length; i++) s[i] = (float)values[i];
        }
    }
}
