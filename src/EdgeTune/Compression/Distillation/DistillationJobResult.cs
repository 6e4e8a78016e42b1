using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Training;

namespace EdgeTune.Compression.Distillation;

/// <summary>What a distillation run did: validation cross-entropy (full pass over the held-out data) of teacher and
/// student before/after, parameter counts, the training result and where the student was saved.</summary>
public sealed record DistillationJobResult(
    Training.Evaluation.EvalResult? Teacher,
    Training.Evaluation.EvalResult? StudentBefore,
    Training.Evaluation.EvalResult? StudentAfter,
    long TeacherParameters,
    long StudentParameters,
    Formats.HfConfig StudentConfig,
    TrainingResult Training,
    string SavedTo,
    string MetricsPath,
    string? TeacherCachePath);
