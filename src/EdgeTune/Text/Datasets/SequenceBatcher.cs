using EdgeTune.Tensors;

namespace EdgeTune.Text.Datasets;

/// <summary>A micro-batch: <see cref="Tokens"/> and <see cref="Targets"/> are row-major (B, T). Rows past
/// <see cref="Rows"/> (the epoch's last, partial batch) are padding with every target ignored.</summary>
public sealed record MicroBatch(int[] Tokens, int[] Targets, int Batch, int SeqLen, int Rows, int Epoch, int Index)
{
    /// <summary>Positions that carry a loss.</summary>
    public int TrainedTokens => Targets.Count(t => t != CrossEntropy.IgnoreIndex);
}

/// <summary>
/// Serves micro-batches of B sequences, each epoch in an order shuffled with a seeded <see cref="Rng"/> (Fisher-Yates,
/// drawn at the start of the epoch). An epoch has ceil(N / B) batches; the last one is filled up with padding rows.
/// <see cref="State"/> and <see cref="Restore"/> save and restore the position exactly, so a resumed run is served
/// the same batches as an uninterrupted one.
/// </summary>
public sealed class SequenceBatcher
{
    private readonly IReadOnlyList<TrainingSequence> _sequences;
    private readonly bool _shuffle;
    private readonly int _padId;
    private readonly Rng _rng;
    private readonly int[] _order;
    private RngState _epochRng;

    /// <param name="sequences">training sequences, all of one length.</param>
    /// <param name="batchSize">rows per micro-batch (B).</param>
    /// <param name="seed">seed of the shuffle.</param>
    /// <param name="shuffle">false serves the sequences in order every epoch.</param>
    /// <param name="padId">token of padding rows.</param>
    public SequenceBatcher(IReadOnlyList<TrainingSequence> sequences, int batchSize, ulong seed, bool shuffle = true, int padId = 0)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        if (sequences.Count == 0) throw new ArgumentException("SequenceBatcher: no sequences to batch", nameof(sequences));
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "SequenceBatcher: batch size must be >= 1");
        SeqLen = sequences[0].Length;
        for (int i = 0; i < sequences.Count; i++)
            if (sequences[i].Tokens.Length != SeqLen || sequences[i].Targets.Length != SeqLen)
                throw new ArgumentException($"SequenceBatcher: sequence {i} has {sequences[i].Tokens.Length} tokens and {sequences[i].Targets.Length} targets; expected {SeqLen} of each", nameof(sequences));
        _sequences = sequences;
        BatchSize = batchSize;
        _shuffle = shuffle;
        _padId = padId;
        _rng = new Rng(seed);
        _order = new int[sequences.Count];
        BatchesPerEpoch = (sequences.Count + batchSize - 1) / batchSize;
        StartEpoch(0);
    }

    public int BatchSize { get; }
    public int SeqLen { get; }
    public int BatchesPerEpoch { get; }
    /// <summary>The epoch of the next batch (0-based; it turns over when the next batch is drawn).</summary>
    public int Epoch { get; private set; }
    /// <summary>Index of the next batch within <see cref="Epoch"/> (equal to <see cref="BatchesPerEpoch"/> at its end).</summary>
    public int Index { get; private set; }
    /// <summary>Batches served so far.</summary>
    public long BatchesServed => (long)Epoch * BatchesPerEpoch + Index;

    /// <summary>The current position, to save in a checkpoint.</summary>
    public BatcherState State => new(Epoch, Index, _epochRng, _sequences.Count, BatchSize);

    /// <summary>Returns to a saved position.</summary>
    /// <exception cref="ArgumentException">the state belongs to other data or another batch size, or is out of range.</exception>
    public void Restore(BatcherState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Sequences != _sequences.Count || state.BatchSize != BatchSize)
            throw new ArgumentException($"SequenceBatcher.Restore: state is for {state.Sequences} sequences in batches of {state.BatchSize}; this batcher has {_sequences.Count} in batches of {BatchSize}", nameof(state));
        if (state.Epoch < 0 || state.Index < 0 || state.Index > BatchesPerEpoch)
            throw new ArgumentException($"SequenceBatcher.Restore: epoch {state.Epoch}, index {state.Index} out of range (index 0..{BatchesPerEpoch})", nameof(state));
        _rng.State = state.EpochRng;
        StartEpoch(state.Epoch);
        Index = state.Index;
    }

    /// <summary>The next micro-batch in new arrays.</summary>
    public MicroBatch Next()
    {
        var tokens = new int[BatchSize * SeqLen];
        var targets = new int[BatchSize * SeqLen];
        int epoch = Epoch, index = Index;
        int rows = Next(tokens, targets);
        // Next may have turned the epoch over before drawing.
        if (index == BatchesPerEpoch) { epoch++; index = 0; }
        return new MicroBatch(tokens, targets, BatchSize, SeqLen, rows, epoch, index);
    }

    /// <summary>Writes the next micro-batch into (B*T) buffers; returns the number of real rows.</summary>
    public int Next(Span<int> tokens, Span<int> targets)
    {
        int n = BatchSize * SeqLen;
        if (tokens.Length != n || targets.Length != n)
            throw new ArgumentException($"SequenceBatcher.Next: buffers of {tokens.Length} tokens and {targets.Length} targets; expected B*T = {BatchSize}*{SeqLen} = {n} each");
        if (Index == BatchesPerEpoch) StartEpoch(Epoch + 1);
        int first = Index * BatchSize;
        int rows = Math.Min(BatchSize, _sequences.Count - first);
        for (int r = 0; r < BatchSize; r++)
        {
            var dstTok = tokens.Slice(r * SeqLen, SeqLen);
            var dstTgt = targets.Slice(r * SeqLen, SeqLen);
            if (r < rows)
            {
                var s = _sequences[_order[first + r]];
                s.Tokens.CopyTo(dstTok);
                s.Targets.CopyTo(dstTgt);
            }
            else
            {
                dstTok.Fill(_padId);
                dstTgt.Fill(CrossEntropy.IgnoreIndex);
            }
        }
        Index++;
        return rows;
    }

    /// <summary>All of <paramref name="sequences"/> in order, in micro-batches of <paramref name="batchSize"/> (the last
    /// one padded): for evaluation passes, which need no shuffle and no state.</summary>
    public static IEnumerable<MicroBatch> InOrder(IReadOnlyList<TrainingSequence> sequences, int batchSize, int padId = 0)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        if (sequences.Count == 0) yield break;
        var b = new SequenceBatcher(sequences, batchSize, seed: 0, shuffle: false, padId);
        for (int i = 0; i < b.BatchesPerEpoch; i++) yield return b.Next();
    }

    private void StartEpoch(int epoch)
    {
        Epoch = epoch;
        Index = 0;
        _epochRng = _rng.State;
        for (int i = 0; i < _order.Length; i++) _order[i] = i;
        if (!_shuffle) return;
        for (int i = _order.Length - 1; i > 0; i--)
        {
            int j = _rng.NextInt(i + 1);
            (_order[i], _order[j]) = (_order[j], _order[i]);
        }
    }
}
