using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Autograd;
using EdgeTune.Formats;
using EdgeTune.Models;
using EdgeTune.Tensors;
using EdgeTune.Training;

namespace EdgeTune.Compression.Distillation;

/// <summary>
/// Knowledge distillation with the ordinary <see cref="Trainer"/>: <see cref="CreateTrainable"/> wraps a
/// student <see cref="DecoderModel"/> and a teacher into an <see cref="ITrainableModel"/> whose training loss
/// is the fused distillation loss (<see cref="DistillationLossOp"/>), so checkpoints, evaluation, energy
/// accounting and power policies apply unchanged. <see cref="StudentConfig"/> and <see cref="CreateStudent"/>
/// make a smaller, randomly initialised student that shares the teacher's vocabulary (and tokenizer).
/// </summary>
/// <example><code>
/// using var teacher = new ModelTeacher(teacherModel);                       // or TeacherCache.Open(path)
/// using var student = Distiller.CreateStudent(Distiller.StudentConfig(teacherModel.Config, hiddenSize: 32), seed: 1);
/// var trainable = Distiller.CreateTrainable(student, teacher, new DistillationSettings(KlDirection.Forward, 2, 0.5));
/// using var trainer = new Trainer(trainable, batches, options, validation);
/// trainer.Run();
/// </code></example>
public static class Distiller
{
    /// <summary>
    /// The student's trainable model. While the tape records (training), the loss is α·τ²·KL + (1 − α)·CE
    /// against the teacher's predictions for the batch. While it does not (evaluation), the loss is the
    /// student's plain cross-entropy, so validation loss and perplexity are comparable with any model
    /// and the teacher is not run. With α = 0 the training loss is the plain cross-entropy and the teacher is
    /// not run either.
    /// </summary>
    /// <exception cref="ArgumentException">the teacher's vocabulary differs from the student's.</exception>
    public static DelegateTrainableModel CreateTrainable(DecoderModel student, IDistillationTeacher teacher, DistillationSettings settings,
        int vocabChunk = CrossEntropy.DefaultChunk, int rowChunkElements = DistillationLoss.DefaultRowChunkElements)
    {
        ArgumentNullException.ThrowIfNull(student);
        ArgumentNullException.ThrowIfNull(teacher);
        settings.Validate();
        if (teacher.VocabSize != student.VocabSize)
            throw new ArgumentException($"the teacher's vocabulary has {teacher.VocabSize} tokens but the student's has {student.VocabSize}; they must share one tokenizer", nameof(teacher));
        return new DelegateTrainableModel(student.Parameters, (tape, tokens, targets, batch, time) =>
        {
            // α = 0 is exactly the plain cross-entropy: the teacher need not run (a no-teacher baseline).
            if (!tape.IsRecording || settings.Alpha == 0) return student.Loss(tape, tokens, targets, batch, time, vocabChunk);
            var predicted = teacher.Predict(tokens, targets, batch, time);
            var h = student.Hidden(tape, tokens, batch, time);
            return tape.DistillationLoss(h, student.LmHead.Variable, targets, predicted, settings, rowChunkElements);
        });
    }

    /// <summary>
    /// A student config from the teacher's: the same vocabulary, special tokens, norm, RoPE and context; each
    /// given size replaces the teacher's. Defaults: hidden size half the teacher's, intermediate size scaled with
    /// it (rounded up to a multiple of 4), the teacher's depth, the teacher's head size (heads = hidden / head
    /// size) and the teacher's query-per-key/value-head ratio where it divides the heads.
    /// </summary>
    public static HfConfig StudentConfig(HfConfig teacher, int? hiddenSize = null, int? layers = null, int? heads = null,
        int? kvHeads = null, int? intermediateSize = null)
    {
        ArgumentNullException.ThrowIfNull(teacher);
        int hidden = hiddenSize ?? Math.Max(1, teacher.HiddenSize / 2);
        if (hidden < 1) throw new ArgumentOutOfRangeException(nameof(hiddenSize), hidden, "student hidden size must be >= 1");
        int h = heads ?? Math.Max(1, hidden / Math.Max(1, teacher.HeadDim));
        if (h < 1 || hidden % h != 0)
            throw new ArgumentException($"student hidden size {hidden} must be a multiple of its {h} attention heads", nameof(heads));
        int ratio = Math.Max(1, teacher.NumAttentionHeads / Math.Max(1, teacher.NumKeyValueHeads));
        int kv = kvHeads ?? (h % ratio == 0 ? h / ratio : h);
        if (kv < 1 || h % kv != 0)
            throw new ArgumentException($"student attention heads {h} must be a multiple of its {kv} key/value heads", nameof(kvHeads));
        int inter = intermediateSize ?? (int)Math.Ceiling(teacher.IntermediateSize * (double)hidden / teacher.HiddenSize / 4.0) * 4;
        int depth = layers ?? teacher.NumHiddenLayers;
        if (depth < 1) throw new ArgumentOutOfRangeException(nameof(layers), depth, "student layers must be >= 1");
        var config = teacher with
        {
            HiddenSize = hidden,
            NumHiddenLayers = depth,
            NumAttentionHeads = h,
            NumKeyValueHeads = kv,
            HeadDim = hidden / h,
            IntermediateSize = Math.Max(1, inter),
            TorchDtype = "float32",
        };
        config.Validate("student config");
        return config;
    }

    /// <summary>A trainable F32 student with random weights (N(0, std) matrices, unit norms); the caller disposes it.</summary>
    public static DecoderModel CreateStudent(HfConfig config, ulong seed, float std = 0.02f, RopeStyle ropeStyle = RopeStyle.HalfSplit) =>
        DecoderModel.CreateRandom(config, seed, ropeStyle, std, trainable: true);
}
