namespace EdgeTune.Training;

/// <summary>One micro-batch: <see cref="Tokens"/> and <see cref="Targets"/> both [B·T] row-major
/// (targets equal to <see cref="Tensors.CrossEntropy.IgnoreIndex"/> are not counted).</summary>
public sealed record TrainingBatch(int[] Tokens, int[] Targets, int Batch, int Time)
{
    /// <summary>Throws when the arrays do not hold B·T ids.</summary>
    public TrainingBatch Validate(string source)
    {
        if (Batch <= 0 || Time <= 0 || Tokens.Length != Batch * Time || Targets.Length != Tokens.Length)
            throw new Tensors.ShapeException($"{source}: a batch of B×T = {Batch}×{Time} needs {Batch * Time} tokens and targets, got {Tokens.Length} and {Targets.Length}");
        return this;
    }
}

/// <summary>
/// An endless stream of micro-batches (it wraps around at the end of the data, counting epochs) whose
/// position can be saved and restored exactly, so a resumed run reads the same batches as an
/// uninterrupted one.
/// </summary>
public interface IBatchSource
{
    /// <summary>The next micro-batch of <paramref name="batch"/> sequences of <paramref name="time"/> tokens.</summary>
    TrainingBatch Next(int batch, int time);

    /// <summary>Micro-batches in one pass over the data at this shape, or null when unknown.</summary>
    long? BatchesPerEpoch(int batch, int time);

    /// <summary>Back to the first batch (validation sources are reset before every evaluation).</summary>
    void Reset();

    /// <summary>The position (and any random state) as a string, e.g. JSON.</summary>
    string SavePosition();

    /// <summary>Restores a position <see cref="SavePosition"/> gave.</summary>
    void RestorePosition(string position);
}
