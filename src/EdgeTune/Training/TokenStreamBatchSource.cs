using System.Globalization;
using EdgeTune.Tensors;

namespace EdgeTune.Training;

/// <summary>
/// Micro-batches cut from one token stream: the stream is split into windows of T+1 tokens
/// (stride T; inputs are the first T, targets the last T), visited in order, or in an order shuffled
/// per epoch from (seed, epoch) when <c>shuffle</c> is set. The position is (epoch, window index),
/// saved as "epoch:index".
/// </summary>
public sealed class TokenStreamBatchSource : IBatchSource
{
    private readonly int[] _tokens;
    private readonly bool _shuffle;
    private readonly ulong _seed;
    private int[]? _order;
    private int _orderTime = -1;
    private long _orderEpoch = -1;

    public TokenStreamBatchSource(int[] tokens, bool shuffle = false, ulong seed = 0)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (tokens.Length < 2) throw new ArgumentException($"TokenStreamBatchSource: the stream holds {tokens.Length} tokens; at least 2 are needed", nameof(tokens));
        _tokens = tokens;
        _shuffle = shuffle;
        _seed = seed;
    }

    /// <summary>Completed passes over the data.</summary>
    public long Epoch { get; private set; }

    /// <summary>The next window within the epoch.</summary>
    public long Index { get; private set; }

    private int Windows(int time) => Math.Max(1, (_tokens.Length - 1) / time);

    public long? BatchesPerEpoch(int batch, int time) => Math.Max(1, Windows(time) / batch);

    public TrainingBatch Next(int batch, int time)
    {
        if (batch <= 0 || time <= 0) throw new ArgumentOutOfRangeException(nameof(batch), $"TokenStreamBatchSource: B×T = {batch}×{time} must be positive");
        var tokens = new int[batch * time];
        var targets = new int[batch * time];
        int windows = Windows(time);
        for (int b = 0; b < batch; b++)
        {
            if (Index >= windows) { Epoch++; Index = 0; }
            int w = WindowAt(Index, time);
            Index++;
            int start = w * time;
            for (int t = 0; t < time; t++)
            {
                int i = start + t;
                // a stream shorter than T+1 tokens pads with ignored targets
                tokens[b * time + t] = i < _tokens.Length ? _tokens[i] : 0;
                targets[b * time + t] = i + 1 < _tokens.Length ? _tokens[i + 1] : CrossEntropy.IgnoreIndex;
            }
        }
        return new TrainingBatch(tokens, targets, batch, time);
    }

    private int WindowAt(long index, int time)
    {
        if (!_shuffle) return (int)index;
        if (_order is null || _orderTime != time || _orderEpoch != Epoch)
        {
            int n = Windows(time);
            _order = new int[n];
            for (int i = 0; i < n; i++) _order[i] = i;
            var rng = new Rng(_seed ^ (0x9E3779B97F4A7C15UL * (ulong)(Epoch + 1)));
            for (int i = n - 1; i > 0; i--)
            {
                int j = rng.NextInt(i + 1);
                (_order[i], _order[j]) = (_order[j], _order[i]);
            }
            (_orderTime, _orderEpoch) = (time, Epoch);
        }
        return _order[index];
    }

    public void Reset() => (Epoch, Index) = (0, 0);

    public string SavePosition() => string.Create(CultureInfo.InvariantCulture, $"{Epoch}:{Index}");

    public void RestorePosition(string position)
    {
        ArgumentNullException.ThrowIfNull(position);
        var parts = position.Split(':');
        if (parts.Length != 2 || !long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out long e)
            || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long i))
            throw new FormatException($"TokenStreamBatchSource: position '{position}' is not 'epoch:index'");
        (Epoch, Index) = (e, i);
    }
}
