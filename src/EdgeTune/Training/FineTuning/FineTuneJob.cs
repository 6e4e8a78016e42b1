using EdgeTune.Adapters;
using EdgeTune.Compression.Quantization;
using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Energy;
using EdgeTune.Formats.Export;
using EdgeTune.Generation;
using EdgeTune.Models;
using EdgeTune.Privacy;
using EdgeTune.Text;
using EdgeTune.Text.Datasets;
using EdgeTune.Tensors;

namespace EdgeTune.Training.FineTuning;

/// <summary>
/// One fine-tuning run end to end: load the model (or the built-in stories260K, <see cref="BuiltInModels"/>), read and
/// report the data, plan memory, generate the sample prompts' answers before training, attach LoRA (or train all
/// weights), train with checkpoints and evaluation, then save the adapter (PEFT layout) or the model (HF safetensors),
/// plot the loss curves and generate the same prompts again. With the built-in model the run folder also gets a
/// merged, self-contained model folder (weights + tokenizer) that <c>generate</c> and <c>eval</c> load directly.
/// Energy: the meters found on the machine (<see cref="EnergyMeterDiscovery"/>, honouring <c>EDGETUNE_SYSFS_ROOT</c>)
/// account every step into metrics.jsonl and the result, the power policies of <see cref="FineTuneOptions.Power"/>
/// run between steps, and energy.png shows power and cumulative energy next to loss.png.
/// Privacy: <see cref="FineTuneOptions.Canaries"/> inserts random canaries into the training sequences (canaries.json,
/// for <see cref="Privacy.MemorizationAudit"/>), and <see cref="FineTuneOptions.DifferentialPrivacy"/> trains the LoRA
/// adapter with DP-SGD (<see cref="Privacy.DpSgd"/>; q = lot / training sequences, the canary copies included), reporting
/// ε in the log, metrics.jsonl and <see cref="FineTuneResult.Privacy"/>.
/// </summary>
public static class FineTuneJob
{
    public static async Task<FineTuneResult> RunAsync(FineTuneOptions options, IProgress<TrainingStatus>? progress = null,
        IProgress<FineTuneMessage>? log = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Training.Validate();
        var method = options.ResolvedMethod;
        bool builtIn = options.Model is null;
        string dataPath = options.Data ?? BuiltInModels.DemoDataPath();
        if (!Formats.Hub.HubDatasetReference.IsHubReference(dataPath) && !File.Exists(dataPath))
            throw new FileNotFoundException($"training data '{dataPath}' does not exist", dataPath);

        if (options.DifferentialPrivacy is not null && method != FineTuneMethod.Lora)
            throw new ArgumentException("differential privacy (DP-SGD) is implemented for LoRA fine-tuning only: use --method lora with a pre-trained model");
        options.DifferentialPrivacy?.Validate();
        if (options.Canaries < 0 || options.CanaryRepeats <= 0)
            throw new ArgumentException($"canaries: count {options.Canaries} must be ≥ 0 and repeats {options.CanaryRepeats} > 0");
        if (options.BaseQuantization is not null && method != FineTuneMethod.Lora)
            throw new ArgumentException($"a quantized base (--base-dtype {options.BaseQuantization.Value.Info().Name}) is frozen; it needs LoRA, not full fine-tuning");
        // An encrypted folder without its key, a wrong key, or a key for a folder of plain outputs is refused here,
        // before anything is loaded or written.
        var files = Security.RunFiles.ForWriting(options.OutputDir, options.Encryption);
        if (files.IsEncrypted) log?.Report(new($"run folder {options.OutputDir}: {files.Describe()}"));
        LoadedModel loaded;
        DecoderModel model;
        ITokenizer tokenizer;
        ChatTemplate? template;
        string? tokenizerFolder = null;
        var loadOptions = method == FineTuneMethod.Full ? ModelLoadOptions.FullFineTuning : ModelLoadOptions.Inference;
        if (builtIn)
        {
            loaded = BuiltInModels.Stories260K(loadOptions);
            model = (DecoderModel)loaded.Model;
            tokenizer = loaded.RequireTokenizer();
            template = null; // a story model: it continues text
            log?.Report(new($"model: built-in stories260K (llama2.c TinyStories, MIT; {model.Parameters.ElementCount:N0} parameters, {tokenizer.VocabSize}-token vocabulary), pre-trained"));
        }
        else
        {
            loaded = await ModelLoader.LoadAsync(options.Model!, options.Tokenizer, options.Hub, cancellationToken: cancellationToken, options: loadOptions, key: options.Encryption).ConfigureAwait(false);
            model = loaded.Model as DecoderModel ?? throw new NotSupportedException($"fine-tuning supports decoder models; '{options.Model}' is {loaded.Config.ModelType}");
            tokenizer = loaded.RequireTokenizer();
            template = loaded.ChatTemplate;
            tokenizerFolder = options.Tokenizer is { } t ? (Directory.Exists(t) ? t : null) : (Directory.Exists(loaded.Source) ? loaded.Source : null);
            log?.Report(new($"model: {loaded.Source} ({model.Config.ModelType}, {model.Parameters.ElementCount:N0} parameters)"));
        }

        LoraAdapter? adapter = null;
        long totalParameters = model.Parameters.ElementCount; // before quantization (quantized bytes are not elements)
        try
        {
            if (options.BaseQuantization is { } baseFormat)
            {
                var q = ModelQuantizer.Quantize(model, baseFormat);
                log?.Report(new($"QLoRA base: {q.Layers} projections quantized to {baseFormat.Info().Name}, weights {MemoryPlanner.Format(q.BytesBefore)} -> {MemoryPlanner.Format(q.BytesAfter)}" +
                    (q.Skipped.Count > 0 ? $" ({q.Skipped.Count} not a multiple of the {baseFormat.Info().BlockSize}-block stay float)" : "")));
            }
            var dataset = await TrainingDataset.LoadAsync(dataPath, tokenizer, template, new DatasetOptions
            {
                SeqLen = options.Training.SeqLen,
                ValidationFraction = options.ValidationFraction,
                Seed = options.Training.Seed,
            }, options.Hub, ct: cancellationToken).ConfigureAwait(false);
            log?.Report(new(dataset.Report.Describe()));
            if (dataset.Train.Count == 0)
                throw new InvalidDataException($"'{dataPath}': no training sequence left after validation split and rejections (see the data report)");
            IReadOnlyList<TrainingSequence> trainSequences = dataset.Train;
            string? canariesPath = null;
            if (options.Canaries > 0)
            {
                var canaries = CanarySet.Generate(options.Canaries, options.Training.Seed, options.CanaryRepeats);
                trainSequences = [.. dataset.Train, .. canaries.ToSequences(tokenizer, options.Training.SeqLen, dataset.PadId)];
                Directory.CreateDirectory(options.OutputDir);
                canariesPath = Path.Combine(options.OutputDir, CanarySet.FileName);
                files.WriteAllText(canariesPath, canaries.ToJson());
                log?.Report(new($"canaries: {canaries.Secrets.Count} secrets of {canaries.Digits} digits, each inserted {canaries.Repeats} times ({canaries.Secrets.Count * canaries.Repeats} of {trainSequences.Count} training sequences), written to {canariesPath}"));
            }

            var request = MemoryPlanRequest.From(model.Config, options.Training, method, options.Lora.Rank, options.Lora.TargetModules,
                model.Embed.Value.DType is DType.F16 or DType.BF16 ? model.Embed.Value.DType : model.Projections().First().Layer is Nn.Linear l ? l.Weight.Value.DType : DType.F32)
                with { BaseQuantization = options.BaseQuantization ?? (model.Projections().First().Layer as QuantizedLinear)?.Format }; // a checkpoint loaded quantized counts too
            var plan = options.MaxMemoryBytes is long max
                ? MemoryPlanner.Plan(request, max)
                : new MemoryPlan(request, MemoryPlanner.Estimate(request), long.MaxValue, true, [], null);
            if (!plan.Fits) throw new InsufficientMemoryException($"does not fit in {MemoryPlanner.Format(plan.MaxBytes)}: {plan.Reason}");
            foreach (string change in plan.Changes) log?.Report(new($"memory plan: {change}"));
            log?.Report(new($"predicted peak memory: {MemoryPlanner.Format(plan.Estimate.Total)}"));
            var training = plan.Request.ApplyTo(options.Training) with { OutputDir = options.OutputDir };

            // The base model's answers, generated before anything trains (after a QLoRA base quantization: that is the base trained on).
            var prompts = options.SamplePrompt is { } sp ? [sp] : builtIn && options.Data is null ? BuiltInModels.DemoPrompts : FirstQuestion(dataPath) is { } first ? [first] : (IReadOnlyList<string>)[];
            var before = new List<string>(prompts.Count);
            foreach (string p in prompts)
                before.Add(await Sample(model, tokenizer, template, p, options.SampleTokens, cancellationToken).ConfigureAwait(false));

            if (options.Qat is { } qatFormat)
                log?.Report(new(Compression.Quantization.Qat.QatInjector.Apply(model, qatFormat, options.QatActivations).Describe()));
            if (method == FineTuneMethod.Lora)
            {
                adapter = LoraInjector.Apply(model, options.Lora);
                log?.Report(new($"LoRA r={options.Lora.Rank} alpha={options.Lora.Alpha} on {adapter.Layers.Count} projections: {adapter.ParameterCount:N0} trainable parameters"));
            }
            model.ActivationCheckpointing = training.ActivationCheckpointing;
            var trainable = adapter?.Parameters ?? model.Parameters;
            var trainableModel = new DelegateTrainableModel(trainable, (tape, tok, tgt, b, t) => model.Loss(tape, tok, tgt, b, t, training.VocabChunk));
            var trainSource = new SequenceBatcherSource(new SequenceBatcher(trainSequences, training.MicroBatch, training.Seed, shuffle: true, padId: dataset.PadId));
            var validation = dataset.Validation.Count > 0
                ? new SequenceBatcherSource(new SequenceBatcher(dataset.Validation, training.MicroBatch, training.Seed, shuffle: false, padId: dataset.PadId))
                : null;

            DpSgd? dp = null;
            if (options.DifferentialPrivacy is { } dpOptions)
            {
                int lot = training.MicroBatch * training.GradAccumulation, steps = Trainer.PlanSteps(training, trainSource);
                dp = DpSgd.Create(dpOptions, lot, trainSequences.Count, steps);
                double planned = NoiseCalibration.EpsilonFor(dp.SamplingRate, dp.NoiseMultiplier, steps, dp.Delta);
                log?.Report(new(FormattableString.Invariant(
                    $"differential privacy: DP-SGD, clip C={dp.ClipNorm:G4}, noise multiplier sigma={dp.NoiseMultiplier:G4}{(dpOptions.TargetEpsilon is null ? "" : " (calibrated)")}, lot {lot} of {trainSequences.Count} sequences (q={dp.SamplingRate:G4}), {steps} steps: epsilon={planned:G4} at delta={dp.Delta:G3} planned (RDP accountant, Poisson-sampling assumption; batches are shuffled)")));
            }
            Directory.CreateDirectory(options.OutputDir);
            files.WriteAllText(Path.Combine(options.OutputDir, "data_report.json"), dataset.Report.ToJson());
            string metricsPath = Path.Combine(options.OutputDir, "metrics.jsonl");
            using var metrics = new JsonlMetricsSink(metricsPath, append: options.Resume, files);
            var meters = options.Meters ?? EnergyMeterDiscovery.Discover(new EnergyDiscoveryOptions(Profile: options.DeviceProfile));
            log?.Report(new($"energy meter: {meters.Total.Id} - {meters.TotalExplanation}"));
            var accountant = new EnergyAccountant(meters.Total, options: options.EnergyAccounting,
                fallback: meters.Total.IsEstimate ? null : new CpuTimeEstimateMeter(options.DeviceProfile));
            PolicyEngine? engine = null;
            if (!options.Power.IsEmpty)
            {
                engine = PolicyEngine.Create(options.Power, meters, maxThreads: WorkerPool.Shared.Threads, joulesSpent: () => accountant.TotalJoules);
                log?.Report(new($"power policies: {options.Power}"));
            }
            using var trainer = new Trainer(trainableModel, trainSource, training, validation)
            {
                Progress = progress,
                Metrics = metrics,
                PredictedMemory = plan.Estimate,
                Energy = accountant,
                PowerPolicies = engine,
                AfterBackward = options.AfterBackward,
                AfterStep = options.AfterStep,
                Privacy = dp,
                Files = files,
            };
            if (options.Resume)
            {
                string? from = trainer.Resume();
                // Rows written after the checkpoint (by the run that stopped) would otherwise appear twice.
                metrics.TruncateAfterStep(from is null ? null : trainer.State.Step);
                log?.Report(new(from is not null ? $"resumed from {from}" : "no valid checkpoint to resume from; starting fresh"));
            }
            var evalBefore = validation is not null && trainer.State.Step == 0 ? trainer.Evaluate() : ((double, double)?)null;
            var result = await Task.Run(() => trainer.Run(cancellationToken), CancellationToken.None).ConfigureAwait(false);
            var evalAfter = validation is not null ? trainer.Evaluate() : ((double, double)?)null;

            string savedTo;
            string? mergedTo = null;
            if (adapter is not null)
            {
                savedTo = Path.Combine(options.OutputDir, "adapter");
                AdapterFiles.Save(adapter, savedTo, options.Model ?? BuiltInModels.Stories260KName, files);
                if (builtIn && options.BaseQuantization is null && options.Qat is null)
                {
                    // The built-in base has no path a user can name, so the run also gets the merged model, ready to load.
                    adapter.Merge();
                    mergedTo = Path.Combine(options.OutputDir, "model");
                    ExportWithTokenizer(model, mergedTo, files);
                }
            }
            else
            {
                Compression.Quantization.Qat.QatInjector.Remove(model); // save the trained F32 weights, not rounded
                savedTo = Path.Combine(options.OutputDir, "model");
                if (builtIn) ExportWithTokenizer(model, savedTo, files);
                else ModelExporter.ExportSafetensors(model, savedTo, DType.F32, tokenizerFolder, files: files);
            }

            var comparisons = new List<SampleComparison>(prompts.Count);
            if (result.Reason != TrainingStopReason.Cancelled)
                for (int i = 0; i < prompts.Count; i++)
                    comparisons.Add(new(prompts[i], before[i], await Sample(model, tokenizer, template, prompts[i], options.SampleTokens, cancellationToken).ConfigureAwait(false)));

            string? plotPath = null, energyPlot = null;
            if (!files.IsEncrypted) // plots would be plaintext pictures of the run
            {
                plotPath = Path.Combine(options.OutputDir, "loss.png");
                LossCurves.Save(metricsPath, plotPath);
                string energyPlotPath = Path.Combine(options.OutputDir, "energy.png");
                energyPlot = EnergyCurves.Save(metricsPath, energyPlotPath) ? energyPlotPath : null;
            }

            return new FineTuneResult(dataset.Report, plan, trainable.TrainableElementCount, totalParameters,
                evalBefore, evalAfter, result, options.OutputDir, savedTo, metricsPath, plotPath,
                prompts.Count > 0 ? prompts[0] : null, comparisons.Count > 0 ? comparisons[0].After : null,
                result.Energy, energyPlot, meters.TotalExplanation,
                dp is null ? null : new DpSummary(dp.Epsilon, dp.Delta, dp.NoiseMultiplier, dp.ClipNorm, dp.SamplingRate, dp.Accountant.Rounds, dp.LotSize, dp.DatasetSize),
                canariesPath)
            { Samples = comparisons, MergedModelPath = mergedTo };
        }
        finally
        {
            adapter?.Dispose();
            loaded.Dispose();
        }
    }

    /// <summary>Exports a model of the built-in family with a copy of its llama2.c tokenizer, so the folder loads alone.</summary>
    private static void ExportWithTokenizer(DecoderModel model, string dir, Security.RunFiles files)
    {
        ModelExporter.ExportSafetensors(model, dir, DType.F32, files: files);
        files.CopyIn(Path.Combine(BuiltInModels.Stories260KFolder(), BuiltInModels.TokenizerFile), Path.Combine(dir, BuiltInModels.TokenizerFile));
        files.CopyIn(Path.Combine(BuiltInModels.Stories260KFolder(), "LICENSE"), Path.Combine(dir, "LICENSE"));
    }

    /// <summary>Greedy continuation of a prompt, rendered as a user turn when the model has a chat template.</summary>
    public static Task<string> Sample(DecoderModel model, ITokenizer tokenizer, ChatTemplate? template, string prompt, int maxTokens, CancellationToken ct)
    {
        string text = template is null ? prompt : template.Render([new ChatMessage("user", prompt)], addGenerationPrompt: true);
        var options = new GenerationOptions(maxTokens, SamplingOptions.Greedy, ["\n"], AddBos: template is null ? null : false,
            StopIds: LoadedModel.StopIdsOf(model.Config, tokenizer));
        return new TextGenerator(model, tokenizer).GenerateAsync(text, options, cancellationToken: ct);
    }

    /// <summary>The first instruction (or first user message) of a JSONL file, to show what was learned.</summary>
    private static string? FirstQuestion(string dataPath)
    {
        if (!dataPath.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase)) return null;
        foreach (string line in File.ReadLines(dataPath))
        {
            try
            {
                using var doc = System.Text.Json.JsonDocument.Parse(line);
                if (doc.RootElement.TryGetProperty("instruction", out var ins) && ins.ValueKind == System.Text.Json.JsonValueKind.String) return ins.GetString();
                if (doc.RootElement.TryGetProperty("messages", out var msgs) && msgs.ValueKind == System.Text.Json.JsonValueKind.Array)
                    foreach (var m in msgs.EnumerateArray())
                        if (m.TryGetProperty("role", out var r) && r.GetString() == "user") return m.GetProperty("content").GetString();
            }
            catch (System.Text.Json.JsonException) { }
        }
        return null;
    }
}
