using EdgeTune.Text.Datasets;

namespace EdgeTune.Training;

/// <summary>
/// An <see cref="IBatchSource"/> over a <see cref="SequenceBatcher"/> (the data pipeline's shuffled, packed
/// sequences). The batcher fixes B and T: the trainer's <see cref="TrainingOptions.MicroBatch"/> and
/// <see cref="TrainingOptions.SeqLen"/> must equal them (rebuild the batcher when a memory plan changes the
/// micro-batch). The position is the batcher's <see cref="BatcherState"/> as JSON; <see cref="Reset"/> goes back
/// to the state it had when this source was made (use an unshuffled batcher for validation).
/// </summary>
public sealed class SequenceBatcherSource : IBatchSource
{
    private readonly BatcherState _start;

    public SequenceBatcherSource(SequenceBatcher batcher)
    {
        Batcher = batcher ?? throw new ArgumentNullException(nameof(batcher));
        _start = batcher.State;
    }

    public SequenceBatcher Batcher { get; }

    public TrainingBatch Next(int batch, int time)
    {
        Check(batch, time);
        var m = Batcher.Next();
        return new TrainingBatch(m.Tokens, m.Targets, m.Batch, m.SeqLen);
    }

    public long? BatchesPerEpoch(int batch, int time)
    {
        Check(batch, time);
        return Batcher.BatchesPerEpoch;
    }

    public void Reset() => Batcher.Restore(_start);

    public string SavePosition() => Batcher.State.ToJson();

    public void RestorePosition(string position) => Batcher.Restore(BatcherState.FromJson(position));

    private void Check(int batch, int time)
    {
        if (batch != Batcher.BatchSize || time != Batcher.SeqLen)
            throw new ArgumentException($"SequenceBatcherSource: the trainer asks for B×T = {batch}×{time} but the batcher serves {Batcher.BatchSize}×{Batcher.SeqLen}; set MicroBatch and SeqLen to match or rebuild the batcher");
    }
}
