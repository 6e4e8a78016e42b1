using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Energy;
using EdgeTune.Formats.Export;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Text.Datasets;
using EdgeTune.Training;
using EdgeTune.Training.Evaluation;

namespace EdgeTune.Compression.Distillation;

/// <summary>
/// One distillation run end to end: load the teacher (inference) and its tokenizer, build or load the
/// student (same vocabulary), read the data with a held-out tail (as fine-tuning does), optionally build or
/// open a top-k <see cref="TeacherCache"/>, train the student with the <see cref="Trainer"/> on
/// <see cref="Distiller.CreateTrainable"/> (checkpoints, metrics.jsonl, energy accounting), and save it as a
/// loadable model folder (config.json + model.safetensors + the tokenizer). Validation cross-entropy is a
/// full pass over the held-out sequences (<see cref="LossEvaluator"/>), for the teacher and for the student
/// before and after.
/// </summary>
public static class DistillationJob
{
    /// <exception cref="FileNotFoundException">the data, teacher, student or cache is missing.</exception>
    /// <exception cref="ArgumentException">teacher and student vocabularies differ, or the options are inconsistent.</exception>
    /// <exception cref="InvalidDataException">the teacher cache is corrupt or belongs to other data.</exception>
    public static async Task<DistillationJobResult> RunAsync(DistillationJobOptions options, IProgress<TrainingStatus>? progress = null,
        IProgress<string>? log = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var training = options.Training.Validate() with { OutputDir = options.OutputDir };
        options.Settings.Validate();
        if (!File.Exists(options.Data)) throw new FileNotFoundException($"training data '{options.Data}' does not exist", options.Data);
        if (!File.Exists(options.Teacher) && !Directory.Exists(options.Teacher))
            throw new FileNotFoundException($"teacher model '{options.Teacher}' does not exist", options.Teacher);
        if (options.Student is { } sp && !File.Exists(sp) && !Directory.Exists(sp))
            throw new FileNotFoundException($"student model '{sp}' does not exist", sp);
        if (options.Tokenizer is { } tp && !File.Exists(tp) && !Directory.Exists(tp))
            throw new FileNotFoundException($"tokenizer '{tp}' does not exist", tp);
        if (options.TopK < 0) throw new ArgumentOutOfRangeException(nameof(options), options.TopK, "--top-k must be >= 0");
        if (options.TeacherCachePath is { } cp && !File.Exists(cp) && options.TopK == 0)
            throw new ArgumentException($"teacher cache '{cp}' does not exist; give --top-k K to build it");

        // Refuses an encrypted run folder without its key (or a key for a folder of plain outputs) before any work.
        var files = Security.RunFiles.ForWriting(options.OutputDir, options.Encryption);
        using var teacherLoaded = await ModelLoader.LoadAsync(options.Teacher, options.Tokenizer, cancellationToken: cancellationToken, key: options.Encryption).ConfigureAwait(false);
        var teacher = teacherLoaded.Model as DecoderModel
            ?? throw new NotSupportedException($"distillation needs a decoder-model teacher; '{options.Teacher}' is {teacherLoaded.Config.ModelType}");
        var tokenizer = teacherLoaded.RequireTokenizer();
        if (tokenizer.VocabSize > teacher.VocabSize)
            throw new ArgumentException($"the tokenizer has {tokenizer.VocabSize} tokens but the teacher's vocabulary only {teacher.VocabSize}");
        log?.Report($"teacher: {teacherLoaded.Source} ({teacher.Parameters.ElementCount:N0} parameters, hidden {teacher.Config.HiddenSize}, {teacher.Config.NumHiddenLayers} layers)");

        LoadedModel? studentLoaded = null;
        DecoderModel student;
        if (options.Student is { } studentPath)
        {
            studentLoaded = ModelLoader.Load(studentPath, options.Tokenizer ?? (Directory.Exists(options.Teacher) ? options.Teacher : null), ModelLoadOptions.FullFineTuning, options.Encryption);
            student = studentLoaded.Model as DecoderModel
                ?? throw new NotSupportedException($"distillation needs a decoder-model student; '{studentPath}' is {studentLoaded.Config.ModelType}");
        }
        else
        {
            var s = options.StudentShape;
            var config = Distiller.StudentConfig(teacher.Config, s.HiddenSize, s.Layers, s.Heads, s.KeyValueHeads, s.IntermediateSize);
            student = Distiller.CreateStudent(config, training.Seed, ropeStyle: teacher.RopeStyle);
        }
        try
        {
            if (student.VocabSize != teacher.VocabSize)
                throw new ArgumentException($"the student's vocabulary has {student.VocabSize} tokens but the teacher's has {teacher.VocabSize}; they must share one tokenizer");
            log?.Report($"student: {(options.Student ?? "random init")} ({student.Parameters.ElementCount:N0} parameters, hidden {student.Config.HiddenSize}, intermediate {student.Config.IntermediateSize}, {student.Config.NumHiddenLayers} layers, {student.Config.NumAttentionHeads}/{student.Config.NumKeyValueHeads} heads)");

            var dataset = TrainingDataset.Load(options.Data, tokenizer, teacherLoaded.ChatTemplate, new DatasetOptions
            {
                SeqLen = training.SeqLen,
                ValidationFraction = options.ValidationFraction,
                Seed = training.Seed,
            });
            log?.Report(dataset.Report.Describe());
            if (dataset.Train.Count == 0)
                throw new InvalidDataException($"'{options.Data}': no training sequence left after the validation split (see the data report)");

            Directory.CreateDirectory(options.OutputDir);
            IDistillationTeacher source;
            using var modelTeacher = new ModelTeacher(teacher, options.TopK);
            string? cachePath = options.TeacherCachePath;
            if (cachePath is not null)
            {
                if (!File.Exists(cachePath))
                {
                    log?.Report($"building teacher cache {cachePath} (top-{options.TopK} of {dataset.Train.Count} sequences)");
                    int n = TeacherCache.Build(modelTeacher, dataset.Train.Select(t => t.Tokens), training.SeqLen, options.TopK, cachePath, files, training.MicroBatch);
                    log?.Report($"teacher cache: {n} sequences, {new FileInfo(cachePath).Length:N0} bytes");
                }
                var cache = TeacherCache.Open(cachePath, files);
                if (cache.VocabSize != teacher.VocabSize)
                    throw new InvalidDataException($"teacher cache '{cachePath}' has vocabulary {cache.VocabSize}; the teacher has {teacher.VocabSize}");
                source = cache;
            }
            else source = modelTeacher;

            var validation = dataset.Validation.Select(v => new EvalWindow(v.Tokens, v.Targets)).ToList();
            EvalResult? Eval(DecoderModel m) => validation.Count > 0 ? LossEvaluator.Evaluate(m, validation, training.MicroBatch, cancellationToken: cancellationToken) : null;
            var teacherEval = Eval(teacher);
            if (teacherEval is not null) log?.Report($"teacher validation: loss {teacherEval.Loss:F4} ppl {teacherEval.Perplexity:F2}");
            var before = Eval(student);

            var trainable = Distiller.CreateTrainable(student, source, options.Settings, training.VocabChunk);
            var trainSource = new SequenceBatcherSource(new SequenceBatcher(dataset.Train, training.MicroBatch, training.Seed, shuffle: true, padId: dataset.PadId));
            var valSource = dataset.Validation.Count > 0
                ? new SequenceBatcherSource(new SequenceBatcher(dataset.Validation, training.MicroBatch, training.Seed, shuffle: false, padId: dataset.PadId))
                : null;
            string metricsPath = Path.Combine(options.OutputDir, "metrics.jsonl");
            using var metrics = new JsonlMetricsSink(metricsPath, append: false, files);
            var meters = options.Meters ?? EnergyMeterDiscovery.Discover(new EnergyDiscoveryOptions());
            var accountant = new EnergyAccountant(meters.Total, options: options.EnergyAccounting,
                fallback: meters.Total.IsEstimate ? null : new CpuTimeEstimateMeter(null));
            TrainingResult result;
            using (var trainer = new Trainer(trainable, trainSource, training, valSource) { Progress = progress, Metrics = metrics, Energy = accountant, Files = files })
                result = await Task.Run(() => trainer.Run(cancellationToken), CancellationToken.None).ConfigureAwait(false);
            var after = Eval(student);

            string savedTo = Path.Combine(options.OutputDir, "model");
            string? tokSource = options.Tokenizer ?? (Directory.Exists(options.Teacher) ? options.Teacher : null);
            ModelExporter.ExportSafetensors(student, savedTo, DType.F32, tokSource is not null && Directory.Exists(tokSource) ? tokSource : null, tokenizer, files);
            if (tokSource is not null && File.Exists(tokSource))
                files.CopyIn(tokSource, Path.Combine(savedTo, Path.GetFileName(tokSource))); // e.g. a llama2.c tok512.bin
            return new DistillationJobResult(teacherEval, before, after, teacher.Parameters.ElementCount, student.Parameters.ElementCount,
                student.Config, result, savedTo, metricsPath, cachePath);
        }
        finally
        {
            if (studentLoaded is not null) studentLoaded.Dispose();
            else student.Dispose();
        }
    }
}
