using EdgeTune.Adapters;
using EdgeTune.Autograd;
using EdgeTune.Energy;
using EdgeTune.Nn;
using EdgeTune.Tensors;
using EdgeTune.Training;

namespace EdgeTune.Models.Bert;

/// <summary>What an encoder is fine-tuned for.</summary>
public enum EncoderTask
{
    /// <summary>Sentence embeddings from (anchor, positive) pairs, in-batch negatives (<see cref="EncoderLosses.Contrastive"/>).</summary>
    Embed,

    /// <summary>Sequence classification with a linear head on the mean-pooled output (<see cref="EncoderLosses.Classification"/>).</summary>
    Classify,
}

/// <summary>A training pair for <see cref="EncoderTask.Embed"/>: the positive is what the anchor should retrieve.</summary>
public sealed record TextPair(string Anchor, string Positive);

/// <summary>A training example for <see cref="EncoderTask.Classify"/>: a text and its class in 0..classes−1.</summary>
public sealed record LabeledText(string Text, int Label);

/// <summary>How <see cref="EncoderFineTune"/> trains: the task, LoRA (null: full fine-tuning of every encoder weight) and
/// the <see cref="Trainer"/>'s options (<see cref="TrainingOptions.MicroBatch"/> counts pairs or texts,
/// <see cref="TrainingOptions.SeqLen"/> caps each text's tokens).</summary>
public sealed record EncoderFineTuneOptions
{
    public EncoderTask Task { get; init; } = EncoderTask.Embed;

    /// <summary>LoRA settings; null trains the whole encoder.</summary>
    public LoraConfig? Lora { get; init; } = new() { Rank = 8, Alpha = 16, TargetModules = ["query", "key", "value", "dense"] };

    public TrainingOptions Training { get; init; } = new() { Steps = 100, MicroBatch = 16, SeqLen = 128, LearningRate = 1e-4, WarmupSteps = 10, EvalEvery = 0, CheckpointEvery = 0 };

    /// <summary>The similarity scale of the contrastive loss.</summary>
    public double Scale { get; init; } = EncoderLosses.DefaultScale;

    /// <summary>Classes of <see cref="EncoderTask.Classify"/>; 0 takes 1 + the largest label.</summary>
    public int Classes { get; init; }

    /// <summary>Per-step energy accounting handed to the <see cref="Trainer"/> (null: none).</summary>
    public EnergyAccountant? Energy { get; init; }

    /// <summary>Power policies the <see cref="Trainer"/> evaluates between steps (null: none).</summary>
    public PolicyEngine? PowerPolicies { get; init; }

    /// <summary>Where the <see cref="Trainer"/> writes a line per step (null: nowhere).</summary>
    public IMetricsSink? Metrics { get; init; }

    /// <summary>How the <see cref="Trainer"/> writes and reads checkpoints (<see cref="Trainer.Files"/>): plain by default,
    /// or the run folder's <see cref="Security.RunFiles"/> (encrypted checkpoints in an encrypted run folder).</summary>
    public Security.RunFiles Files { get; init; } = Security.RunFiles.Plain;

    /// <summary>Restore the newest valid checkpoint under <see cref="TrainingOptions.OutputDir"/> (weights or adapter and
    /// head, optimizer, schedule and data position) before training, as decoder fine-tuning's --resume does.</summary>
    public bool Resume { get; init; }

    /// <summary>The memory planner's estimate (<see cref="MemoryPlanner.Estimate(EncoderMemoryPlanRequest)"/>), reported by
    /// the <see cref="Trainer"/> beside the measured peak.</summary>
    public MemoryEstimate? PredictedMemory { get; init; }
}

/// <summary>What <see cref="EncoderFineTune.Run(BertEncoder, BertWordPiece, IReadOnlyList{TextPair}, EncoderFineTuneOptions, IProgress{TrainingStatus}?, CancellationToken)"/>
/// leaves: the trainer's result, the adapter (LoRA; still applied to the encoder, unmerged) and the classification head.</summary>
public sealed record EncoderFineTuneResult(TrainingResult Training, LoraAdapter? Adapter, Linear? Head)
{
    /// <summary>The checkpoint folder training resumed from (null: it started at step 0).</summary>
    public string? ResumedFrom { get; init; }
}

/// <summary>
/// The encoder fine-tuning recipes: LoRA or full fine-tuning of a <see cref="BertEncoder"/> for sentence embeddings
/// (pairs) or classification (labelled texts), run by the <see cref="Trainer"/> (schedule, clipping, AdamW,
/// checkpoints, and the power policies, energy accounting and metrics sink of <see cref="EncoderFineTuneOptions"/>, as for
/// decoders) over an <see cref="EncoderBatchSource"/>.
/// </summary>
public static class EncoderFineTune
{
    /// <summary>Trains <paramref name="encoder"/> to embed each anchor near its positive.</summary>
    public static EncoderFineTuneResult Run(BertEncoder encoder, BertWordPiece tokenizer, IReadOnlyList<TextPair> pairs, EncoderFineTuneOptions options,
        IProgress<TrainingStatus>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(pairs);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Task != EncoderTask.Embed) throw new ArgumentException($"pairs train the {EncoderTask.Embed} task, not {options.Task}");
        if (pairs.Count < 2) throw new ArgumentException($"contrastive training needs at least 2 pairs (in-batch negatives); got {pairs.Count}");
        int len = options.Training.SeqLen;
        var source = EncoderBatchSource.ForPairs(pairs.Select(p => (tokenizer.Encode(p.Anchor, len), tokenizer.Encode(p.Positive, len))).ToList(),
            tokenizer.PaddingTokenId, options.Training.Seed);
        return Train(encoder, source, tokenizer.PaddingTokenId, options, head: null, progress, cancellationToken);
    }

    /// <summary>Trains <paramref name="encoder"/> and a new head "classifier" to predict each text's label.</summary>
    public static EncoderFineTuneResult Run(BertEncoder encoder, BertWordPiece tokenizer, IReadOnlyList<LabeledText> examples, EncoderFineTuneOptions options,
        IProgress<TrainingStatus>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(examples);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Task != EncoderTask.Classify) throw new ArgumentException($"labelled texts train the {EncoderTask.Classify} task, not {options.Task}");
        if (examples.Count == 0) throw new ArgumentException("no labelled example to train on");
        int classes = options.Classes > 0 ? options.Classes : examples.Max(e => e.Label) + 1;
        foreach (var e in examples)
            if ((uint)e.Label >= (uint)classes) throw new ArgumentException($"label {e.Label} of \"{Short(e.Text)}\" is outside 0..{classes - 1}");
        int len = options.Training.SeqLen;
        var source = EncoderBatchSource.ForLabels(examples.Select(e => (tokenizer.Encode(e.Text, len), e.Label)).ToList(),
            tokenizer.PaddingTokenId, options.Training.Seed);
        var head = EncoderLosses.CreateClassifier(encoder, Math.Max(2, classes), options.Training.Seed);
        return Train(encoder, source, tokenizer.PaddingTokenId, options, head, progress, cancellationToken);
    }

    private static string Short(string s) => s.Length <= 40 ? s : s[..40] + "…";

    private static EncoderFineTuneResult Train(BertEncoder encoder, EncoderBatchSource source, int padId, EncoderFineTuneOptions options, Linear? head,
        IProgress<TrainingStatus>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        LoraAdapter? adapter = null;
        if (options.Lora is { } lora) adapter = LoraInjector.Apply(encoder, lora, "default");
        else
            foreach (var p in encoder.Parameters) p.Trainable = true;
        var all = new ParameterCollection(encoder.Parameters.Concat(adapter?.Parameters ?? Enumerable.Empty<Parameter>()).Concat(head?.Parameters ?? Enumerable.Empty<Parameter>()));
        var model = new DelegateTrainableModel(all, (tape, tokens, targets, b, t) =>
        {
            var batch = EncoderBatchSource.ToBertBatch(tokens, b, t, padId);
            if (head is null) return EncoderLosses.Contrastive(tape, encoder, batch, options.Scale);
            var labels = new int[b];
            for (int r = 0; r < b; r++) labels[r] = targets[r * t];
            return EncoderLosses.Classification(tape, encoder, head, batch, labels);
        });
        using var trainer = new Trainer(model, source, options.Training)
        {
            Progress = progress,
            Energy = options.Energy,
            PowerPolicies = options.PowerPolicies,
            Metrics = options.Metrics,
            PredictedMemory = options.PredictedMemory,
            Files = options.Files,
        };
        string? resumedFrom = null;
        if (options.Resume)
        {
            if (options.Training.OutputDir is null) throw new ArgumentException("resuming needs TrainingOptions.OutputDir (where the checkpoints are)");
            resumedFrom = trainer.Resume();
            // rows the stopped run wrote after its checkpoint would otherwise appear twice
            (options.Metrics as JsonlMetricsSink)?.TruncateAfterStep(resumedFrom is null ? null : trainer.State.Step);
        }
        var result = trainer.Run(cancellationToken);
        return new EncoderFineTuneResult(result, adapter, head) { ResumedFrom = resumedFrom };
    }
}

/// <summary>
/// Micro-batches of tokenized encoder examples for the <see cref="Trainer"/>, in a seeded order reshuffled every epoch.
/// A pair batch of n pairs is 2n rows (anchors, then their positives in the same order); a label batch carries each
/// row's label at its first position of <see cref="TrainingBatch.Targets"/> (the rest is
/// <see cref="CrossEntropy.IgnoreIndex"/>). Rows are padded with the pad id to the longest row of the batch (at most
/// the trainer's sequence length); the encoder attends to the tokens that are not padding.
/// </summary>
public sealed class EncoderBatchSource : IBatchSource
{
    private readonly List<int[]> _a;
    private readonly List<int[]>? _b;
    private readonly List<int>? _labels;
    private readonly int _padId;
    private readonly ulong _seed;
    private int[] _order = [];
    private int _epoch = -1, _next;

    private EncoderBatchSource(List<int[]> a, List<int[]>? b, List<int>? labels, int padId, ulong seed)
    {
        if (a.Count == 0) throw new ArgumentException("an encoder batch source needs at least one example");
        foreach (var s in a.Concat(b ?? []))
        {
            if (s.Length == 0) throw new ArgumentException("an example has no token");
            if (s.Contains(padId)) throw new ArgumentException($"an example holds the padding id {padId} as a token");
        }
        (_a, _b, _labels, _padId, _seed) = (a, b, labels, padId, seed);
        Reset();
    }

    /// <summary>(anchor, positive) token sequences.</summary>
    public static EncoderBatchSource ForPairs(IReadOnlyList<(int[] Anchor, int[] Positive)> pairs, int padId, ulong seed) =>
        new(pairs.Select(p => p.Anchor).ToList(), pairs.Select(p => p.Positive).ToList(), null, padId, seed);

    /// <summary>(tokens, label) examples.</summary>
    public static EncoderBatchSource ForLabels(IReadOnlyList<(int[] Tokens, int Label)> examples, int padId, ulong seed) =>
        new(examples.Select(e => e.Tokens).ToList(), null, examples.Select(e => e.Label).ToList(), padId, seed);

    public int Count => _a.Count;

    /// <summary>The <see cref="BertBatch"/> of a trainer batch: attention where the token is not <paramref name="padId"/>.</summary>
    public static BertBatch ToBertBatch(int[] tokens, int batch, int time, int padId)
    {
        var mask = new int[tokens.Length];
        for (int i = 0; i < tokens.Length; i++) mask[i] = tokens[i] == padId ? 0 : 1;
        return new BertBatch(tokens, mask, new int[tokens.Length], batch, time);
    }

    public TrainingBatch Next(int batch, int time)
    {
        if (batch <= 0) throw new ArgumentOutOfRangeException(nameof(batch), batch, "the micro-batch must be positive");
        if (_b is not null && Math.Min(batch, _a.Count) < 2) throw new ArgumentException("a contrastive micro-batch needs at least 2 pairs");
        var picked = new List<int>(batch);
        for (int i = 0; i < Math.Min(batch, _a.Count); i++)
        {
            if (_next == _order.Length) Shuffle(_epoch + 1);
            picked.Add(_order[_next++]);
        }
        var rows = picked.Select(i => _a[i]).Concat(_b is null ? [] : picked.Select(i => _b[i])).ToList();
        int length = rows.Max(r => r.Length);
        if (length > time) throw new ArgumentException($"an example has {length} tokens; the trainer's sequence length is {time} (tokenize with that maximum)");
        var tokens = new int[rows.Count * length];
        var targets = new int[rows.Count * length];
        Array.Fill(tokens, _padId);
        Array.Fill(targets, CrossEntropy.IgnoreIndex);
        for (int r = 0; r < rows.Count; r++)
        {
            rows[r].CopyTo(tokens, r * length);
            if (_labels is not null) targets[r * length] = _labels[picked[r]];
        }
        return new TrainingBatch(tokens, targets, rows.Count, length);
    }

    public long? BatchesPerEpoch(int batch, int time) => (Count + batch - 1) / batch;

    public void Reset() => Shuffle(0);

    public string SavePosition() => FormattableString.Invariant($"{_epoch}:{_next}");

    public void RestorePosition(string position)
    {
        var parts = (position ?? "").Split(':');
        if (parts.Length != 2 || !int.TryParse(parts[0], out int epoch) || !int.TryParse(parts[1], out int next) || epoch < 0 || next < 0 || next > Count)
            throw new FormatException($"'{position}' is not an encoder batch position (epoch:index)");
        Shuffle(epoch);
        _next = next;
    }

    private void Shuffle(int epoch)
    {
        _epoch = epoch;
        _next = 0;
        _order = Enumerable.Range(0, Count).ToArray();
        var rng = new Rng(_seed + (ulong)epoch * 0x9E3779B97F4A7C15UL);
        for (int i = _order.Length - 1; i > 0; i--)
        {
            int j = (int)(rng.NextDouble() * (i + 1));
            (_order[i], _order[j]) = (_order[j], _order[i]);
        }
    }
}

/// <summary>Retrieval quality of an encoder: query i's relevant document is document i; every document is a candidate.</summary>
public static class EncoderRetrieval
{
    /// <summary>Mean reciprocal rank of the relevant document within the top <paramref name="k"/> (0 beyond), and the
    /// fraction ranked first, by cosine similarity of the sentence embeddings.</summary>
    public static (double MrrAtK, double RecallAt1) Evaluate(BertEncoder encoder, BertWordPiece tokenizer, IReadOnlyList<string> queries,
        IReadOnlyList<string> documents, int k = 10, int batchSize = 32, int maxLength = 128)
    {
        ArgumentNullException.ThrowIfNull(queries);
        ArgumentNullException.ThrowIfNull(documents);
        if (queries.Count == 0 || queries.Count > documents.Count)
            throw new ArgumentException($"{queries.Count} queries for {documents.Count} documents: query i needs document i");
        var q = Embed(encoder, tokenizer, queries, batchSize, maxLength);
        var d = Embed(encoder, tokenizer, documents, batchSize, maxLength);
        double mrr = 0;
        int first = 0;
        for (int i = 0; i < q.Length; i++)
        {
            float own = System.Numerics.Tensors.TensorPrimitives.Dot(q[i], d[i]);
            int rank = 1;
            for (int j = 0; j < d.Length; j++)
                if (j != i && System.Numerics.Tensors.TensorPrimitives.Dot(q[i], d[j]) > own) rank++;
            if (rank <= k) mrr += 1.0 / rank;
            if (rank == 1) first++;
        }
        return (mrr / q.Length, (double)first / q.Length);
    }

    /// <summary>Normalised sentence embeddings of <paramref name="texts"/>, <paramref name="batchSize"/> at a time.</summary>
    public static float[][] Embed(BertEncoder encoder, BertWordPiece tokenizer, IReadOnlyList<string> texts, int batchSize = 32, int maxLength = 128)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(texts);
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "must be positive");
        var result = new List<float[]>(texts.Count);
        for (int i = 0; i < texts.Count; i += batchSize)
            result.AddRange(encoder.SentenceEmbeddings(tokenizer.EncodeBatch(texts.Skip(i).Take(batchSize).ToList(), maxLength)));
        return [.. result];
    }
}
