using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Adapters;
using EdgeTune.Models;
using EdgeTune.Nn;

namespace EdgeTune.Compression.Quantization.Qat;

/// <summary>What <see cref="QatInjector.Apply"/> did: the projections now trained under fake quantization and
/// those left in plain F32 because their input dimension is not a multiple of the format's block.</summary>
public sealed record QatResult(QuantFormat Format, bool Activations, IReadOnlyList<string> Wrapped, IReadOnlyList<string> Skipped)
{
    public string Describe() =>
        $"QAT {Format.Info().Name}{(Activations ? " + int8 activations" : "")} on {Wrapped.Count} projections"
        + (Skipped.Count > 0 ? $"; {Skipped.Count} left F32 (rows not a multiple of {Format.Info().BlockSize}): {string.Join(", ", Skipped)}" : "");
}

/// <summary>
/// Puts a <see cref="DecoderModel"/>'s projections under quantization-aware training and takes them out again.
/// </summary>
/// <remarks>
/// <para>Supported: full-weight QAT (the model loaded trainable, <see cref="Apply"/>, train all parameters,
/// <see cref="Remove"/>, save or quantize the F32 weights). The embedding, the (tied) LM head and the norms
/// stay F32, as the quantizers leave them.</para>
/// <para>With LoRA: apply QAT first, then <see cref="LoraInjector.Apply(DecoderModel, LoraConfig, string, bool)"/>; the adapter then learns against
/// the fake-quantized frozen base (the QLoRA setting), the base weights do not change. Such an adapter cannot
/// be merged while the base is wrapped (LoRA merging needs a plain Linear base); save it as an adapter.
/// Projections already wrapped (by LoRA or anything else) are not touched by <see cref="Apply"/>.</para>
/// </remarks>
public static class QatInjector
{
    /// <summary>Wraps every plain <see cref="Linear"/> projection whose input dimension fits the format's
    /// block in a <see cref="QatLinear"/>; the rest are listed as skipped.</summary>
    public static QatResult Apply(DecoderModel model, QuantFormat format, bool activations = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        var wrapped = new List<string>();
        var skipped = new List<string>();
        foreach (var (path, cur) in model.Projections().ToList())
        {
            if (cur is QatLinear) throw new InvalidOperationException($"QatInjector.Apply: '{cur.Name}' is already under QAT; Remove first");
            if (cur is not Linear lin || !FakeQuant.Supports(format, lin.InFeatures))
            {
                skipped.Add(cur.Name);
                continue;
            }
            model.SetProjection(path, new QatLinear(lin, format, activations));
            wrapped.Add(cur.Name);
        }
        return new QatResult(format, activations, wrapped, skipped);
    }

    /// <summary>Restores every <see cref="QatLinear"/> projection to its plain <see cref="Linear"/> (holding the
    /// trained F32 weight, not rounded). Returns how many were restored.</summary>
    public static int Remove(DecoderModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        int n = 0;
        foreach (var (path, cur) in model.Projections().ToList())
        {
            if (cur is QatLinear q)
            {
                model.SetProjection(path, q.Inner);
                n++;
            }
        }
        return n;
    }

    /// <summary>Replaces every QAT-able projection's F32 weight by its fake-quantized values in place
    /// (dequant(quant(W))): the model then computes what its quantized copy computes. Returns the names rounded.</summary>
    public static IReadOnlyList<string> RoundWeights(DecoderModel model, QuantFormat format) =>
        RoundProjections(model, format, "QatInjector.RoundWeights", (lin, w) => PlainRound(format, lin, w));

    internal static void PlainRound(QuantFormat format, Linear lin, Tensors.Tensor w) =>
        FakeQuant.Weights(format, w.ReadOnlySpan<float>(), w.Span<float>(), lin.OutFeatures, lin.InFeatures);

    /// <summary>Calls <paramref name="round"/> on every projection (plain or under QAT) whose rows fit <paramref name="format"/>,
    /// with its writable F32 weight to overwrite in place; returns the names rounded. <paramref name="op"/> names the caller in errors.</summary>
    internal static IReadOnlyList<string> RoundProjections(DecoderModel model, QuantFormat format, string op, Action<Linear, Tensors.Tensor> round)
    {
        ArgumentNullException.ThrowIfNull(model);
        var done = new List<string>();
        foreach (var (_, cur) in model.Projections())
        {
            var lin = cur as Linear ?? (cur as QatLinear)?.Inner;
            if (lin is null || !FakeQuant.Supports(format, lin.InFeatures)) continue;
            var w = lin.Weight.Value;
            if (w.DType != Tensors.DType.F32 || w.IsReadOnly)
                throw new InvalidOperationException($"{op}: '{lin.Name}' is a {(w.IsReadOnly ? "read-only " : "")}{w.DType} weight; load the model trainable (writable F32)");
            round(lin, w);
            done.Add(lin.Name);
        }
        return done;
    }
}
