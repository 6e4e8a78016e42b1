using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Adapters;
using EdgeTune.Models;
using EdgeTune.Nn;

namespace EdgeTune.Compression.Quantization;

/// <summary>What <see cref="ModelQuantizer.Quantize(EdgeTune.Models.DecoderModel, EdgeTune.Tensors.Quantized.QuantFormat)"/> did.</summary>
/// <param name="Layers">Projections quantized by this call.</param>
/// <param name="BytesBefore">Bytes of every distinct parameter tensor before.</param>
/// <param name="BytesAfter">The same after (quantized weights at their stored size).</param>
/// <param name="QuantizedWeights">Elements of the projection weights now held quantized.</param>
/// <param name="Skipped">Projections left in float because their input width is not a multiple of the block
/// (e.g. stories260K's down_proj, 172 inputs); GGUF export writes those as F16, as llama.cpp's tools do.</param>
public sealed record QuantizationReport(QuantFormat Format, int Layers, long BytesBefore, long BytesAfter, long QuantizedWeights, IReadOnlyList<string> Skipped)
{
    /// <summary>Average bits per weight over every parameter of the model after quantization.</summary>
    public double BitsPerWeight(long totalElements) => totalElements == 0 ? 0 : 8.0 * BytesAfter / totalElements;
}

/// <summary>
/// Post-training quantization of a <see cref="DecoderModel"/>: every decoder projection (q, k, v, o, gate, up, down)
/// becomes a <see cref="QuantizedLinear"/> in one <see cref="QuantFormat"/>. The embedding, the LM head and the
/// norms stay as they are. Each float weight is released (disposed) as soon as its quantized copy exists, so an
/// owned F32 model never holds both in full.
/// </summary>
public static class ModelQuantizer
{
    /// <summary>Quantizes the model's plain <see cref="Linear"/> projections in place (ones already quantized are
    /// left as they are). Call it before injecting adapters.</summary>
    /// <exception cref="ArgumentException">A projection is wrapped by an adapter.</exception>
    public static QuantizationReport Quantize(DecoderModel model, QuantFormat format) => Quantize(model, format, includeEmbeddings: false);

    /// <summary>As <see cref="Quantize(DecoderModel, QuantFormat)"/>; with <paramref name="includeEmbeddings"/> the token
    /// embedding and the LM head (one table when tied) are quantized too and become frozen (QLoRA: the base is
    /// frozen anyway, and the tied table is the largest single tensor of a small model). Off by default for PTQ.</summary>
    public static QuantizationReport Quantize(DecoderModel model, QuantFormat format, bool includeEmbeddings)
    {
        ArgumentNullException.ThrowIfNull(model);
        var info = format.Info();
        foreach (var (_, layer) in model.Projections())
        {
            if (layer is LoraLinear)
                throw new ArgumentException($"ModelQuantizer: '{layer.Name}' carries a LoRA adapter; quantize the base before injecting adapters");
        }
        long before = SizeInBytes(model);
        int count = 0;
        long elements = 0;
        var skipped = new List<string>();
        foreach (var (path, layer) in model.Projections().ToList())
        {
            if (layer is not Linear lin) continue;
            if (lin.InFeatures % info.BlockSize != 0)
            {
                skipped.Add(lin.Name);
                continue;
            }
            var q = QuantizedLinear.Quantize(lin, format);
            var old = model.Parameters.Replace(q.Storage);
            model.SetProjection(path, q);
            old.Dispose();
            count++;
            elements += (long)q.InFeatures * q.OutFeatures;
        }
        if (includeEmbeddings)
        {
            if (model.Embed.Trainable || model.LmHead.Trainable)
                throw new ArgumentException($"ModelQuantizer: the embedding '{model.Embed.Name}' is trainable; a quantized table is frozen");
            if (model.Config.HiddenSize % info.BlockSize != 0) skipped.Add(model.Embed.Name);
            else
            {
                int tables = QuantizeEmbeddings(model, format);
                elements += (long)tables * model.Config.VocabSize * model.Config.HiddenSize;
            }
        }
        return new QuantizationReport(format, count, before, SizeInBytes(model), elements, skipped);
    }

    /// <summary>Bytes of the model's distinct parameter tensors as held now (quantized at their stored size).</summary>
    public static long SizeInBytes(DecoderModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.Parameters.Select(p => p.Value).Distinct().Sum(t => t.ByteLength);
    }

    /// <summary>Swaps the float embedding (and a separate float LM head) for <see cref="QuantizedEmbedding"/> modules: each
    /// table is replaced in <see cref="DecoderModel.Parameters"/> by a frozen parameter of its quantized bytes and
    /// released. Returns the number of tables quantized (0 when already quantized).</summary>
    internal static int QuantizeEmbeddings(DecoderModel model, QuantFormat format)
    {
        int count = 0;
        bool tied = model.TiedHead;
        if (model.Embedding is not QuantizedEmbedding)
        {
            var q = QuantizedEmbedding.Quantize(model.Embedding.Name, model.Embed, format);
            model.Parameters.Replace(q.Weight).Dispose();
            model.SetEmbedding(q, tied ? q : null);
            count++;
        }
        if (model.Head is not QuantizedEmbedding)
        {
            var h = QuantizedEmbedding.Quantize(model.Head.Name, model.LmHead, format);
            model.Parameters.Replace(h.Weight).Dispose();
            model.SetEmbedding(model.Embedding, h);
            count++;
        }
        return count;
    }
}
