using EdgeTune.Models.Bert;
using EdgeTune.Nn;
using EdgeTune.Training.Internal;

namespace EdgeTune.Training;

/// <summary>What the <see cref="MemoryPlanner"/> predicts for when an encoder is fine-tuned (<see cref="EncoderFineTune"/>).</summary>
public sealed record EncoderMemoryPlanRequest
{
    public required BertConfig Model { get; init; }
    public EncoderTask Task { get; init; } = EncoderTask.Embed;
    /// <summary>Classes of the <see cref="EncoderTask.Classify"/> head.</summary>
    public int Classes { get; init; } = 2;
    public FineTuneMethod Method { get; init; } = FineTuneMethod.Lora;
    public int LoraRank { get; init; } = 8;
    /// <summary>Projection names LoRA wraps (query, key, value, dense).</summary>
    public IReadOnlyList<string> LoraTargets { get; init; } = ["query", "key", "value", "dense"];
    /// <summary>Tokens of the longest row of a batch (rows are padded to it).</summary>
    public int SeqLen { get; init; } = 128;
    /// <summary>Pairs (<see cref="EncoderTask.Embed"/>: 2 rows each) or texts per pass.</summary>
    public int MicroBatch { get; init; } = 16;
    public int GradAccumulation { get; init; } = 1;
    /// <summary>Optimizer state tensors per trained weight (AdamW 2).</summary>
    public int OptimizerStates { get; init; } = 2;
    /// <summary>Memory of the .NET runtime, code and managed heap besides tensors (added to the total).</summary>
    public long RuntimeBytes { get; init; } = 96L << 20;

    /// <summary>Sequences the encoder runs per pass: both sides of each pair, or each text.</summary>
    public int Rows => Task == EncoderTask.Embed ? 2 * MicroBatch : MicroBatch;

    /// <summary>The request that <paramref name="options"/> implies for an encoder of <paramref name="model"/>.</summary>
    public static EncoderMemoryPlanRequest From(BertConfig model, EncoderFineTuneOptions options, int classes = 2)
    {
        ArgumentNullException.ThrowIfNull(options);
        var r = new EncoderMemoryPlanRequest
        {
            Model = model, Task = options.Task, Classes = Math.Max(2, classes), Method = options.Lora is null ? FineTuneMethod.Full : FineTuneMethod.Lora,
            SeqLen = Math.Min(options.Training.SeqLen, model.MaxPositions), MicroBatch = options.Training.MicroBatch, GradAccumulation = options.Training.GradAccumulation,
        };
        return options.Lora is { } l ? r with { LoraRank = l.Rank, LoraTargets = l.TargetModules } : r;
    }
}

public static partial class MemoryPlanner
{
    /// <summary>
    /// Estimated peak of one encoder training step by component: weights from <see cref="BertEncoder.ExpectedTensors"/>
    /// (plus LoRA adapters on the projections the targets select and the classification head); activations from running
    /// the encoder's own block (<see cref="BertLayer.Forward{TX}"/>) shape-only, between the embeddings and the pooling and
    /// loss of <see cref="EncoderLosses"/>, through the same tape-liveness replay as decoders; saved op state from what the
    /// encoder's ops keep in managed arrays (attention probabilities, LayerNorm statistics).
    /// </summary>
    public static MemoryEstimate Estimate(EncoderMemoryPlanRequest r)
    {
        ArgumentNullException.ThrowIfNull(r);
        var c = r.Model;
        c.Validate();
        if (r.SeqLen <= 0 || r.MicroBatch <= 0 || r.GradAccumulation <= 0 || r.LoraRank <= 0)
            throw new ArgumentException($"MemoryPlanner: seq_len {r.SeqLen}, micro_batch {r.MicroBatch}, grad_accumulation {r.GradAccumulation} and LoRA rank {r.LoraRank} must be > 0", nameof(r));
        const int F32 = 4;
        bool full = r.Method == FineTuneMethod.Full;
        long weights = 0, trainable = 0;
        foreach (var (_, shape) in BertEncoder.ExpectedTensors(c))
        {
            long n = shape.Aggregate(1L, (a, d) => a * d);
            weights += n * F32;
            if (full) trainable += n;
        }
        var linears = BertEncoder.WithShapeLayers(c, layers => layers.SelectMany(l => ModuleTree.All<ILinear>(l)).Select(x => x.Module).ToList());
        if (!full)
            foreach (var l in linears.Where(l => PlanForward.IsTarget(r.Method, r.LoraTargets, l.Name)))
                trainable += (long)r.LoraRank * (l.InFeatures + l.OutFeatures);
        if (r.Task == EncoderTask.Classify) trainable += (long)r.Classes * (c.HiddenSize + 1);
        if (!full) weights += trainable * F32; // adapters and head
        else weights += (r.Task == EncoderTask.Classify ? (long)r.Classes * (c.HiddenSize + 1) : 0) * F32;

        long rows = (long)r.Rows * r.SeqLen;
        long saved = c.Layers * ((long)r.Rows * c.Heads * r.SeqLen * r.SeqLen + 2 * 2 * rows) * F32 + 2 * rows * F32;
        return new MemoryEstimate(weights, trainable * F32, trainable * F32 * r.OptimizerStates, EncoderActivations(r), 0, 0, saved, r.RuntimeBytes);
    }

    // The tape of EncoderLosses, shape-only: three embedding gathers and their sum, LayerNorm, the blocks on PlanForward,
    // then pooling and the task's loss on (rows, ·) values.
    private static long EncoderActivations(EncoderMemoryPlanRequest r)
    {
        const int F32 = 4;
        var c = r.Model;
        bool full = r.Method == FineTuneMethod.Full;
        long rows = (long)r.Rows * r.SeqLen, x = rows * c.HiddenSize * F32;
        var g = new TapeLiveness();
        int word = g.Op("word_embeddings", x, x, full);
        int pos = g.Op("position_embeddings", x, x, full);
        int sum = g.Op("add", x, x, false, word, pos);
        int type = g.Op("token_type_embeddings", x, x, full);
        sum = g.Op("add", x, x, false, sum, type);
        int h = g.Op("layernorm", x, x, full, sum);
        var f = new PlanForward(g, r.Method, r.LoraRank, r.LoraTargets, rows, F32);
        h = BertEncoder.WithShapeLayers(c, layers =>
        {
            var node = new PlanValue(h, c.HiddenSize);
            foreach (var layer in layers) node = layer.Forward(f, node);
            return node.Node;
        });
        long pooled = (long)r.Rows * c.HiddenSize * F32;
        int p = g.Op("pool", pooled, pooled, false, h);
        if (r.Task == EncoderTask.Embed)
        {
            long half = pooled / 2, n = r.MicroBatch;
            int e = g.Op("l2_normalize", pooled, pooled, false, p);
            int a = g.Op("anchors", half, half, false, e);
            int b = g.Op("positives", half, half, false, e);
            int scores = g.Op("scale", n * n * F32, n * n * F32, false, g.Op("scores", n * n * F32, n * n * F32, false, a, b));
            g.Op("cross_entropy", F32, F32, false, scores);
        }
        else
        {
            long logits = (long)r.Rows * r.Classes * F32;
            g.Op("cross_entropy", F32, F32, false, g.Op("classifier", logits, logits, true, p));
        }
        return g.Peak();
    }

    /// <summary>
    /// Settings of an encoder run that fit <paramref name="maxBytes"/>: classification halves the micro-batch and
    /// doubles gradient accumulation (the effective batch stays); contrastive training cannot, since its in-batch
    /// negatives need the whole batch in one pass, so it is refused with the reason when it does not fit.
    /// </summary>
    public static (EncoderMemoryPlanRequest Request, MemoryEstimate Estimate, bool Fits, IReadOnlyList<string> Changes, string? Reason) PlanEncoder(EncoderMemoryPlanRequest request, long maxBytes)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (maxBytes <= 0) throw new ArgumentOutOfRangeException(nameof(maxBytes), maxBytes, "MemoryPlanner.Plan: the budget must be > 0 bytes");
        var r = request;
        var changes = new List<string>();
        var e = Estimate(r);
        while (e.Total > maxBytes && r.Task == EncoderTask.Classify && r.MicroBatch > 1)
        {
            int mb = (r.MicroBatch + 1) / 2, accum = (int)Math.Ceiling((double)r.MicroBatch * r.GradAccumulation / mb);
            changes.Add($"micro-batch {r.MicroBatch} → {mb}, gradient accumulation {r.GradAccumulation} → {accum}");
            r = r with { MicroBatch = mb, GradAccumulation = accum };
            e = Estimate(r);
        }
        if (e.Total <= maxBytes) return (r, e, true, changes, null);
        var (name, bytes) = e.Components[0];
        string how = r.Task == EncoderTask.Embed ? $"at {r.MicroBatch} pairs per batch (in-batch negatives need the whole batch in one pass: lower --batch or --seq-len)" : "at micro-batch 1";
        return (r, e, false, changes, $"needs {Format(e.Total)} {how}, over the {Format(maxBytes)} budget; the biggest part is {name} ({Format(bytes)}) [{e}]");
    }
}
