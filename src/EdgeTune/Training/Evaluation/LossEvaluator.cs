using EdgeTune.Autograd;
using EdgeTune.Models;
using EdgeTune.Tensors;

namespace EdgeTune.Training.Evaluation;

/// <summary>
/// Evaluates a model on <see cref="EvalWindow"/>s without recording gradients: batches of windows go
/// through <see cref="DecoderModel.Loss"/> on a non-recording tape, and the batch means are combined
/// weighted by their scored positions, so the result is the mean over all scored positions whatever
/// the batching.
/// </summary>
public static class LossEvaluator
{
    /// <param name="model">The model (with any adapter already attached).</param>
    /// <param name="windows">Rows of one common length, at most the model's positions.</param>
    /// <param name="batchSize">Windows per forward pass.</param>
    /// <param name="progress">Receives the number of windows done after each batch.</param>
    /// <exception cref="ArgumentException">No window scores anything, or the windows differ in length or exceed the model.</exception>
    public static EvalResult Evaluate(DecoderModel model, IReadOnlyList<EvalWindow> windows, int batchSize = 4,
        IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(windows);
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "LossEvaluator: the batch size must be at least 1");
        if (windows.Count == 0) throw new ArgumentException("LossEvaluator: there are no windows to evaluate", nameof(windows));
        int time = windows[0].Tokens.Length;
        if (time < 1 || time > model.MaxPositions)
            throw new ArgumentException($"LossEvaluator: window length {time} must be 1..{model.MaxPositions} (the model's positions)", nameof(windows));
        for (int i = 0; i < windows.Count; i++)
            if (windows[i].Tokens.Length != time || windows[i].Targets.Length != time)
                throw new ArgumentException($"LossEvaluator: window {i} has {windows[i].Tokens.Length} tokens and {windows[i].Targets.Length} targets; expected {time} of each", nameof(windows));

        double weighted = 0;
        long scored = 0;
        for (int first = 0; first < windows.Count; first += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int b = Math.Min(batchSize, windows.Count - first);
            var tokens = new int[b * time];
            var targets = new int[b * time];
            int count = 0;
            for (int r = 0; r < b; r++)
            {
                var w = windows[first + r];
                w.Tokens.CopyTo(tokens, r * time);
                w.Targets.CopyTo(targets, r * time);
                count += w.ScoredCount;
            }
            if (count > 0)
            {
                using var tape = new Tape { IsRecording = false };
                double loss = model.Loss(tape, tokens, targets, b, time).Item();
                weighted += loss * count;
                scored += count;
            }
            progress?.Report(first + b);
        }
        if (scored == 0) throw new ArgumentException("LossEvaluator: no window has a scored position", nameof(windows));
        return new EvalResult(weighted / scored, scored, windows.Count);
    }
}
