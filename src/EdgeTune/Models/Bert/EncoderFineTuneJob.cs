using System.Text.Json;
using EdgeTune.Adapters;
using EdgeTune.Autograd;
using EdgeTune.Energy;
using EdgeTune.Formats.Internal;
using EdgeTune.Tensors;
using EdgeTune.Training;

namespace EdgeTune.Models.Bert;

/// <summary>What <see cref="EncoderFineTuneJob.Run"/> does: the encoder (<see cref="BertFolder.Load(string)"/>), the data
/// (<see cref="EncoderData"/>), the recipe and where the fine-tuned encoder goes.</summary>
public sealed record EncoderJobOptions
{
    public required string Model { get; init; }
    public required string Data { get; init; }
    public required string OutputDir { get; init; }
    public EncoderFineTuneOptions Recipe { get; init; } = new();

    /// <summary>Rows held out (seeded shuffle) for the before/after figure: MRR@10 (embed) or accuracy (classify).
    /// Null: 10% of the rows, at most 200, none below 20 rows.</summary>
    public int? HeldOut { get; init; }

    /// <summary>Power policies (pause, throttle, stop between steps), as for decoder fine-tuning.</summary>
    public PowerPolicyOptions Power { get; init; } = PowerPolicyOptions.None;

    public EnergyAccountingOptions EnergyAccounting { get; init; } = EnergyAccountingOptions.Default;

    /// <summary>The device profile of the CPU-time energy estimate when no meter is found (null: the default).</summary>
    public DeviceProfile? DeviceProfile { get; init; }

    /// <summary>Meters to use instead of discovering this machine's (tests).</summary>
    public EnergyMeterSet? Meters { get; init; }

    /// <summary>Continue from the newest valid checkpoint in <see cref="OutputDir"/> (checkpoints/), with the same model,
    /// data and settings as the run that stopped.</summary>
    public bool Resume { get; init; }

    /// <summary>Encrypt the run folder (<see cref="OutputDir"/>) with this key, or read it with it when it is already
    /// encrypted (<see cref="Security.RunFiles"/>): the saved encoder, the head and labels, the checkpoints and the metrics are
    /// all written encrypted. It also opens <see cref="Model"/> when that is inside an encrypted run folder. Null: plain,
    /// and an encrypted folder is refused before anything is read or written.</summary>
    public Security.EncryptionKey? Encryption { get; init; }

    /// <summary>A memory budget: classification lowers the micro-batch (raising gradient accumulation) to fit, contrastive
    /// training is refused when it does not fit (<see cref="MemoryPlanner.PlanEncoder"/>). Null: no budget.</summary>
    public long? MaxMemoryBytes { get; init; }
}

/// <summary>What an encoder job measured and wrote. <see cref="Metric"/> names the held-out figure.</summary>
public sealed record EncoderJobResult(TrainingResult Training, string Metric, double? Before, double? After, int TrainRows, int HeldOutRows,
    long TrainableParameters, long TotalParameters, string SavedTo, string MetricsPath)
{
    /// <summary>The memory planner's estimate for the settings trained with.</summary>
    public MemoryEstimate? Predicted { get; init; }

    /// <summary>What the planner changed to fit <see cref="EncoderJobOptions.MaxMemoryBytes"/>.</summary>
    public IReadOnlyList<string> PlanChanges { get; init; } = [];

    /// <summary>The checkpoint the run resumed from (null: started at step 0).</summary>
    public string? ResumedFrom { get; init; }
}

/// <summary>
/// The encoder fine-tuning job behind <c>edgetune finetune --task embed|classify</c>: loads the encoder, reads and splits
/// the data, measures the held-out figure, trains (<see cref="EncoderFineTune"/>, with this machine's energy meters,
/// the power policies asked for and a metrics.jsonl line per step), measures again, merges LoRA into the
/// weights and saves a sentence-transformers folder (<see cref="BertFolder.Save(BertEncoder, BertWordPiece, string)"/>; classification adds
/// classifier.safetensors and labels.json) that <c>edgetune embed</c> loads.
/// </summary>
public static class EncoderFineTuneJob
{
    public static EncoderJobResult Run(EncoderJobOptions options, IProgress<TrainingStatus>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        // An encrypted folder without its key, a wrong key, or a key for a folder of plain outputs is refused here,
        // before anything is loaded or written.
        var files = Security.RunFiles.ForWriting(options.OutputDir, options.Encryption);
        var (encoder, tokenizer) = BertFolder.Load(options.Model, options.Encryption);
        using (encoder)
        {
            Directory.CreateDirectory(options.OutputDir);
            string metricsPath = Path.Combine(options.OutputDir, "metrics.jsonl");
            using var metrics = new JsonlMetricsSink(metricsPath, append: options.Resume, files);
            var meters = options.Meters ?? EnergyMeterDiscovery.Discover(new EnergyDiscoveryOptions(Profile: options.DeviceProfile));
            var accountant = new EnergyAccountant(meters.Total, options: options.EnergyAccounting,
                fallback: meters.Total.IsEstimate ? null : new CpuTimeEstimateMeter(options.DeviceProfile));
            var engine = options.Power.IsEmpty ? null
                : PolicyEngine.Create(options.Power, meters, maxThreads: WorkerPool.Shared.Threads, joulesSpent: () => accountant.TotalJoules);
            var recipe = options.Recipe with { Energy = accountant, PowerPolicies = engine, Metrics = metrics, Resume = options.Resume, Files = files };
            int len = Math.Min(recipe.Training.SeqLen, encoder.Config.MaxPositions);
            recipe = recipe with { Training = recipe.Training with { SeqLen = len, OutputDir = options.OutputDir } };
            var rng = new Rng(recipe.Training.Seed ^ 0x5EEDUL);
            List<string> changes = [];
            MemoryEstimate? predicted = null;
            EncoderFineTuneOptions Planned(int classes)
            {
                var request = EncoderMemoryPlanRequest.From(encoder.Config, recipe, classes);
                var (planned, estimate, fits, made, reason) = options.MaxMemoryBytes is long max
                    ? MemoryPlanner.PlanEncoder(request, max) : (request, MemoryPlanner.Estimate(request), true, [], null);
                if (!fits) throw new InsufficientMemoryException($"does not fit in {MemoryPlanner.Format(options.MaxMemoryBytes!.Value)}: {reason}");
                changes.AddRange(made);
                predicted = estimate;
                return recipe with
                {
                    PredictedMemory = estimate,
                    Training = recipe.Training with { MicroBatch = planned.MicroBatch, GradAccumulation = planned.GradAccumulation },
                };
            }
            if (recipe.Task == EncoderTask.Embed)
            {
                recipe = Planned(2);
                var pairs = Shuffle(EncoderData.ReadPairs(options.Data), rng);
                var (train, held) = Split(pairs, options.HeldOut);
                Func<double?> measure = () => held.Count < 2 ? null
                    : EncoderRetrieval.Evaluate(encoder, tokenizer, held.Select(p => p.Anchor).ToList(), held.Select(p => p.Positive).ToList(), 10, 32, len).MrrAtK;
                double? before = measure();
                var result = EncoderFineTune.Run(encoder, tokenizer, train, recipe, progress, cancellationToken);
                double? after = measure();
                long trainable = Finish(encoder, tokenizer, result, options.OutputDir, files);
                return new(result.Training, "MRR@10", before, after, train.Count, held.Count, trainable, encoder.Parameters.Sum(p => p.ElementCount), options.OutputDir, metricsPath)
                { Predicted = predicted, PlanChanges = changes, ResumedFrom = result.ResumedFrom };
            }
            else
            {
                var (all, labels) = EncoderData.ReadLabeled(options.Data);
                var (train, held) = Split(Shuffle(all, rng), options.HeldOut);
                recipe = Planned(labels.Count) with { Classes = labels.Count };
                double? before = null; // the head is new: there is no "before" to measure
                var result = EncoderFineTune.Run(encoder, tokenizer, train, recipe, progress, cancellationToken);
                double? after = held.Count == 0 ? null : Accuracy(encoder, tokenizer, result.Head!, held, len);
                long trainable = Finish(encoder, tokenizer, result, options.OutputDir, files);
                Formats.SafeTensorsWriter.Write(files, Path.Combine(options.OutputDir, "classifier.safetensors"),
                    result.Head!.Parameters.Select(p => new KeyValuePair<string, Tensor>(p.Name, p.Value)));
                files.Write(Path.Combine(options.OutputDir, "labels.json"), fs =>
                {
                    using var w = new Utf8JsonWriter(fs);
                    w.WriteStartArray();
                    foreach (string l in labels) w.WriteStringValue(l);
                    w.WriteEndArray();
                });
                foreach (var p in result.Head!.Parameters) p.Dispose();
                return new(result.Training, "accuracy", before, after, train.Count, held.Count, trainable, encoder.Parameters.Sum(p => p.ElementCount), options.OutputDir, metricsPath)
                { Predicted = predicted, PlanChanges = changes, ResumedFrom = result.ResumedFrom };
            }
        }
    }

    /// <summary>Fraction of <paramref name="examples"/> whose highest logit is their label.</summary>
    public static double Accuracy(BertEncoder encoder, BertWordPiece tokenizer, Nn.ILinear head, IReadOnlyList<LabeledText> examples, int maxLength = 128)
    {
        ArgumentNullException.ThrowIfNull(examples);
        int right = 0;
        for (int i = 0; i < examples.Count; i += 32)
        {
            var chunk = examples.Skip(i).Take(32).ToList();
            using var tape = new Tape { IsRecording = false };
            var logits = EncoderLosses.ClassifierLogits(tape, encoder, head, tokenizer.EncodeBatch(chunk.Select(e => e.Text).ToList(), maxLength)).Value.ToFloatArray();
            int classes = head.OutFeatures;
            for (int r = 0; r < chunk.Count; r++)
            {
                var row = logits.AsSpan(r * classes, classes);
                if (System.Numerics.Tensors.TensorPrimitives.IndexOfMax(row) == chunk[r].Label) right++;
            }
        }
        return examples.Count == 0 ? 0 : (double)right / examples.Count;
    }

    private static long Finish(BertEncoder encoder, BertWordPiece tokenizer, EncoderFineTuneResult result, string dir, Security.RunFiles files)
    {
        long trainable = result.Adapter?.ParameterCount ?? encoder.Parameters.Where(p => p.Trainable).Sum(p => p.ElementCount);
        if (result.Adapter is { } a)
        {
            a.Merge();
            a.Dispose();
        }
        BertFolder.Save(encoder, tokenizer, dir, files);
        return trainable + (result.Head?.Parameters.Sum(p => p.ElementCount) ?? 0);
    }

    private static List<T> Shuffle<T>(List<T> list, Rng rng)
    {
        for (int i = list.Count - 1; i > 0; i--)
        {
            int j = (int)(rng.NextDouble() * (i + 1));
            (list[i], list[j]) = (list[j], list[i]);
        }
        return list;
    }

    private static (List<T> Train, List<T> Held) Split<T>(List<T> rows, int? heldOut)
    {
        int held = heldOut ?? (rows.Count < 20 ? 0 : Math.Min(200, rows.Count / 10));
        if (held < 0 || held >= rows.Count) throw new ArgumentException($"cannot hold out {held} of {rows.Count} rows and still train");
        return (rows.Take(rows.Count - held).ToList(), rows.Skip(rows.Count - held).ToList());
    }
}
