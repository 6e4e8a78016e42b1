using System.Globalization;
using EdgeTune.Formats;
using EdgeTune.Models;
using EdgeTune.Nn;
using EdgeTune.Tensors;
using EdgeTune.Training.Internal;

namespace EdgeTune.Training;

/// <summary>Full fine-tuning trains every weight; LoRA trains low-rank adapters on chosen projections.</summary>
public enum FineTuneMethod { Full, Lora }

/// <summary>What the <see cref="MemoryPlanner"/> predicts for.</summary>
public sealed record MemoryPlanRequest
{
    public required HfConfig Model { get; init; }
    public FineTuneMethod Method { get; init; } = FineTuneMethod.Lora;
    public int LoraRank { get; init; } = 16;
    /// <summary>Projection names LoRA wraps (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj).</summary>
    public IReadOnlyList<string> LoraTargets { get; init; } = Adapters.LoraConfig.AllProjections;
    /// <summary>How frozen projection and embedding weights are stored (F32, F16, BF16). Norms are F32.</summary>
    public DType BaseDType { get; init; } = DType.F32;
    /// <summary>QLoRA: the format the frozen decoder projections are quantized to (their bytes are the format's rows;
    /// projections whose input width is not a multiple of the block stay in <see cref="BaseDType"/>). Null: not quantized.</summary>
    public EdgeTune.Tensors.Quantized.QuantFormat? BaseQuantization { get; init; }
    /// <summary>With <see cref="BaseQuantization"/>: the token embedding and LM head are held in that format too
    /// (<c>ModelQuantizer.Quantize(model, format, includeEmbeddings: true)</c>).</summary>
    public bool QuantizedEmbeddings { get; init; }
    /// <summary>Dtype of trained weights, their gradients and optimizer state.</summary>
    public DType TrainableDType { get; init; } = DType.F32;
    public int SeqLen { get; init; } = 128;
    public int MicroBatch { get; init; } = 4;
    public int GradAccumulation { get; init; } = 1;
    public bool ActivationCheckpointing { get; init; }
    public int VocabChunk { get; init; } = CrossEntropy.DefaultChunk;
    /// <summary>Optimizer state tensors per trained weight (AdamW 2).</summary>
    public int OptimizerStates { get; init; } = 2;
    /// <summary>Worker threads (attention scratch is per thread).</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;
    /// <summary>Memory of the .NET runtime, code and managed heap besides tensors (added to the total).</summary>
    public long RuntimeBytes { get; init; } = 96L << 20;

    /// <summary>Sequences per optimizer step.</summary>
    public int EffectiveBatch => MicroBatch * GradAccumulation;

    /// <summary>The request the training options imply.</summary>
    public static MemoryPlanRequest From(HfConfig model, TrainingOptions options, FineTuneMethod method, int loraRank = 16, IReadOnlyList<string>? loraTargets = null,
        DType baseDType = DType.F32)
    {
        ArgumentNullException.ThrowIfNull(options);
        var r = new MemoryPlanRequest
        {
            Model = model, Method = method, LoraRank = loraRank, BaseDType = baseDType, SeqLen = options.SeqLen, MicroBatch = options.MicroBatch,
            GradAccumulation = options.GradAccumulation, ActivationCheckpointing = options.ActivationCheckpointing, VocabChunk = options.VocabChunk,
        };
        return loraTargets is null ? r : r with { LoraTargets = loraTargets };
    }

    /// <summary><paramref name="options"/> with this request's micro-batch, accumulation, checkpointing and vocab chunk.</summary>
    public TrainingOptions ApplyTo(TrainingOptions options) => options with
    {
        MicroBatch = MicroBatch, GradAccumulation = GradAccumulation, ActivationCheckpointing = ActivationCheckpointing, VocabChunk = VocabChunk,
    };
}

/// <summary>Predicted peak bytes by component. <see cref="TensorBytes"/> is what native tensors hold
/// (compare with <see cref="TensorMemory"/>); <see cref="Total"/> adds managed scratch and the runtime
/// (compare with peak RSS).</summary>
public sealed record MemoryEstimate(
    long Weights, long Gradients, long OptimizerState, long Activations, long LmHeadScratch, long AttentionScratch, long SavedState, long Runtime)
{
    public long TensorBytes => Weights + Gradients + OptimizerState + Activations;
    public long Total => TensorBytes + LmHeadScratch + AttentionScratch + SavedState + Runtime;

    /// <summary>The components by name, largest first.</summary>
    public IReadOnlyList<(string Name, long Bytes)> Components => new (string, long)[]
    {
        ("weights", Weights), ("gradients", Gradients), ("optimizer state", OptimizerState), ("activations", Activations),
        ("LM-head chunk scratch", LmHeadScratch), ("attention scratch", AttentionScratch), ("saved op state", SavedState), ("runtime", Runtime),
    }.OrderByDescending(c => c.Item2).ToList();

    public override string ToString() =>
        string.Join(", ", Components.Select(c => $"{c.Name} {MemoryPlanner.Format(c.Bytes)}")) + $"; total {MemoryPlanner.Format(Total)}";
}

/// <summary>The outcome of <see cref="MemoryPlanner.Plan"/>: the settings chosen, their estimate, whether they fit,
/// the changes made, and when nothing fits the reason (naming the biggest component).</summary>
public sealed record MemoryPlan(MemoryPlanRequest Request, MemoryEstimate Estimate, long MaxBytes, bool Fits, IReadOnlyList<string> Changes, string? Reason);

/// <summary>
/// Predicts the peak memory of fine-tuning a model of any family before it starts, and picks settings
/// that fit a budget. Weights come from the family's tensor list; activations from running the family's own
/// block definition on <see cref="PlanForward"/>, a shape-only backend that records each op's bytes into a
/// replay of the tape's liveness (views cost no value but their gradient), forward then backward, with or
/// without per-block checkpointing. There is no hand-written copy of any network here.
/// </summary>
public static partial class MemoryPlanner
{
    /// <summary>Estimated peak by component.</summary>
    public static MemoryEstimate Estimate(MemoryPlanRequest r)
    {
        ArgumentNullException.ThrowIfNull(r);
        var c = r.Model;
        c.Validate("memory planner config");
        if (r.SeqLen <= 0 || r.MicroBatch <= 0 || r.VocabChunk <= 0 || r.GradAccumulation <= 0)
            throw new ArgumentException($"MemoryPlanner: seq_len {r.SeqLen}, micro_batch {r.MicroBatch}, grad_accumulation {r.GradAccumulation} and vocab_chunk {r.VocabChunk} must be > 0", nameof(r));
        int tb = (int)r.TrainableDType.ByteSize(1);
        bool full = r.Method == FineTuneMethod.Full;

        long weights = 0, trainable = 0;
        foreach (var (name, shape) in DecoderModel.ExpectedTensors(c))
        {
            long n = shape.Aggregate(1L, (a, d) => a * d);
            if (full) { weights += n * tb; trainable += n; }
            else if (shape.Length == 1) weights += n * 4;
            else if (r.BaseQuantization is { } q && (DecoderModel.IsProjection(name) || r.QuantizedEmbeddings && name is DecoderModel.Names.Embed or DecoderModel.Names.LmHead)
                && shape[1] % EdgeTune.Tensors.Quantized.QuantFormats.Info(q).BlockSize == 0)
                weights += (long)shape[0] * EdgeTune.Tensors.Quantized.QuantFormats.RowBytes(q, shape[1]);
            else weights += r.BaseDType.ByteSize(n);
        }
        if (!full)
        {
            foreach (var l in LoraLinears(r)) trainable += (long)r.LoraRank * (l.InFeatures + l.OutFeatures);
            weights += trainable * tb; // the adapters' A and B
        }
        long grads = trainable * tb;
        long optim = trainable * tb * r.OptimizerStates;

        long act = Activations(r, tb);
        long rows = (long)r.MicroBatch * r.SeqLen;
        long lmScratch = rows * Math.Min(r.VocabChunk, c.VocabSize) * 4 * 2 + rows * 4 * 2;
        long attnScratch = (long)Math.Max(1, r.Threads) * Math.Min(r.SeqLen, 64) * (r.SeqLen + c.HeadDim) * 4 * 2;
        // managed arrays ops keep for backward: RmsNorm rstd (2 per block + final), attention log-sum-exp, LM head lse
        long saved = (rows * (2L * c.NumHiddenLayers + 2) + (long)r.MicroBatch * c.NumAttentionHeads * r.SeqLen * c.NumHiddenLayers) * 4;
        if (r.ActivationCheckpointing) saved = (rows * 4 + (long)r.MicroBatch * c.NumAttentionHeads * r.SeqLen) * 4;
        // a frozen head's LM-head loss makes its input gradient in the forward pass and keeps it (N×C F32) for backward
        if (!full) saved += rows * c.HiddenSize * 4;
        return new MemoryEstimate(weights, grads, optim, act, lmScratch, attnScratch, saved, r.RuntimeBytes);
    }

    /// <summary>The projections of the family's blocks (shape-only) that the request's LoRA targets select.</summary>
    private static List<ILinear> LoraLinears(MemoryPlanRequest r) => DecoderModel.WithShapeLayers(r.Model, layers =>
        layers.SelectMany(l => ModuleTree.All<ILinear>(l)).Select(x => x.Module).Where(l => PlanForward.IsTarget(r, l.Name)).ToList());

    // The tape of DecoderModel.Loss, shape-only: embedding, the family's blocks run on PlanForward (or as
    // checkpointed segments whose inner peak is one block's), final norm, fused LM-head loss.
    private static long Activations(MemoryPlanRequest r, int tb)
    {
        var c = r.Model;
        long rows = (long)r.MicroBatch * r.SeqLen, x = rows * c.HiddenSize * tb;
        bool full = r.Method == FineTuneMethod.Full;
        var family = ModelRegistry.Family(c.ModelType);
        var g = new TapeLiveness();
        int h = g.Op("embedding", x, x, full, g.Leaf("tokens", 0, false));
        if (family.EmbeddingScale(c) != 1.0) h = g.Op("scale", x, x, false, h);
        if (!r.ActivationCheckpointing)
        {
            var f = new PlanForward(g, r, rows, tb);
            h = DecoderModel.WithShapeLayers(c, layers =>
            {
                int node = h;
                foreach (var layer in layers) node = layer.Forward(f, new PlanValue(node, c.HiddenSize), r.SeqLen).Node;
                return node;
            });
        }
        else
        {
            var inner = new TapeLiveness();
            int leaf = inner.Leaf("block input", x, true);
            long innerPeak = DecoderModel.WithShapeLayers(c, layers =>
            {
                // the largest block's inner peak (blocks of one model differ only where a family alternates layer kinds)
                return layers.Max(l =>
                {
                    var t = new TapeLiveness();
                    l.Forward(new PlanForward(t, r, rows, tb), new PlanValue(t.Leaf("block input", x, true), c.HiddenSize), r.SeqLen);
                    return t.Peak();
                });
            });
            bool blockTrains = full || LoraLinears(r).Any();
            for (int i = 0; i < c.NumHiddenLayers; i++) h = g.Segment("checkpoint", x, blockTrains, innerPeak, h);
        }
        int n = g.Op("rmsnorm", x, x, full, h);
        g.Op("lm_head_cross_entropy", tb, tb, full, n);
        return g.Peak();
    }

    /// <summary>
    /// Settings that fit <paramref name="maxBytes"/> (compared with <see cref="MemoryEstimate.Total"/>):
    /// halve the micro-batch (doubling gradient accumulation, so the effective batch stays), then enable
    /// activation checkpointing, then shrink the vocabulary chunk, down to micro-batch 1 and chunk 256.
    /// When even that does not fit, <see cref="MemoryPlan.Fits"/> is false and the reason names the
    /// biggest component.
    /// </summary>
    public static MemoryPlan Plan(MemoryPlanRequest request, long maxBytes)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (maxBytes <= 0) throw new ArgumentOutOfRangeException(nameof(maxBytes), maxBytes, "MemoryPlanner.Plan: the budget must be > 0 bytes");
        var r = request;
        var changes = new List<string>();
        var e = Estimate(r);
        while (e.Total > maxBytes)
        {
            if (r.MicroBatch > 1)
            {
                int mb = (r.MicroBatch + 1) / 2;
                int accum = (int)Math.Ceiling((double)r.EffectiveBatch / mb);
                changes.Add($"micro-batch {r.MicroBatch} → {mb}, gradient accumulation {r.GradAccumulation} → {accum}");
                r = r with { MicroBatch = mb, GradAccumulation = accum };
            }
            else if (!r.ActivationCheckpointing)
            {
                changes.Add("activation checkpointing on");
                r = r with { ActivationCheckpointing = true };
            }
            else if (r.VocabChunk > 256)
            {
                int chunk = Math.Max(256, r.VocabChunk / 2);
                changes.Add($"vocab chunk {r.VocabChunk} → {chunk}");
                r = r with { VocabChunk = chunk };
            }
            else
            {
                var (name, bytes) = e.Components[0];
                string reason = $"needs {Format(e.Total)} at micro-batch 1 with activation checkpointing and vocab chunk {r.VocabChunk}, over the {Format(maxBytes)} budget; " +
                    $"the biggest part is {name} ({Format(bytes)})" + (name == "weights" ? ": use a smaller model or store frozen weights as BF16" : "")
                    + $" [{e}]";
                return new MemoryPlan(r, e, maxBytes, false, changes, reason);
            }
            e = Estimate(r);
        }
        return new MemoryPlan(r, e, maxBytes, true, changes, null);
    }

    /// <summary>Bytes as "1.23 GB" / "456.7 MB" / "12.0 KB" (decimal units).</summary>
    public static string Format(long bytes) => bytes switch
    {
        >= 1_000_000_000 => (bytes / 1e9).ToString("0.00", CultureInfo.InvariantCulture) + " GB",
        >= 1_000_000 => (bytes / 1e6).ToString("0.0", CultureInfo.InvariantCulture) + " MB",
        _ => (bytes / 1e3).ToString("0.0", CultureInfo.InvariantCulture) + " KB",
    };

    /// <summary>Parses "2GB", "512 MB", "1.5GiB", "800000" (bytes) for --max-memory.</summary>
    public static long ParseBytes(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string s = text.Trim().ToUpperInvariant();
        (string Suffix, double Scale)[] units = [("GIB", 1L << 30), ("MIB", 1L << 20), ("KIB", 1L << 10), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3), ("G", 1e9), ("M", 1e6), ("K", 1e3), ("B", 1)];
        foreach (var (suffix, scale) in units)
            if (s.EndsWith(suffix, StringComparison.Ordinal) && double.TryParse(s[..^suffix.Length].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v > 0)
                return (long)(v * scale);
        if (long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out long n) && n > 0) return n;
        throw new FormatException($"memory size '{text}' is not a size like 2GB, 512MB or 1.5GiB");
    }
}
