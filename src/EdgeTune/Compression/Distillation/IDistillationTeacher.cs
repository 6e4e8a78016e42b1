using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
namespace EdgeTune.Compression.Distillation;

/// <summary>A source of teacher predictions for the positions of a micro-batch.</summary>
public interface IDistillationTeacher
{
    /// <summary>Vocabulary size of the teacher (must equal the student's).</summary>
    int VocabSize { get; }

    /// <summary>The teacher's view of the B·T positions of <paramref name="tokens"/> (row-major (B, T)).
    /// Rows whose targets are all <see cref="Tensors.CrossEntropy.IgnoreIndex"/> (padding) may be left
    /// unfilled (finite placeholder values): the loss skips them.</summary>
    TeacherTargets Predict(int[] tokens, int[] targets, int batch, int time);
}
