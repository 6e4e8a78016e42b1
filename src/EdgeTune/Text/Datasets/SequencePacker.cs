using EdgeTune.Tensors;

namespace EdgeTune.Text.Datasets;

/// <summary>The sequences built from examples, with what truncation and packing did.</summary>
public sealed record PackResult(IReadOnlyList<TrainingSequence> Sequences, int TruncatedRows, long TruncatedTokens,
    int PackedSequences, long PaddingTokens, long TrainedTokens);

/// <summary>
/// Builds fixed-length <see cref="TrainingSequence"/>s. Within a sample, <c>targets[t] = tokens[t+1]</c> when that next
/// token carries the loss, else <see cref="CrossEntropy.IgnoreIndex"/>; the last token of a sample never predicts the
/// next sample. Samples longer than T keep their first T tokens (counted as truncated). With packing, samples are
/// placed greedily in order into the current sequence while they fit; consecutive samples are separated by EOS
/// (inserted when the earlier one does not already end with it; the separator carries no loss). Without packing,
/// each sample gets its own sequence. The rest of a sequence is padding (<c>padId</c>, target ignored).
/// </summary>
public static class SequencePacker
{
    /// <summary>Packs (or pads) <paramref name="examples"/> into sequences of <paramref name="seqLen"/> tokens.</summary>
    public static PackResult Pack(IReadOnlyList<TokenizedExample> examples, int seqLen, bool pack, int? eosId, int padId)
    {
        ArgumentNullException.ThrowIfNull(examples);
        if (seqLen < 2) throw new ArgumentOutOfRangeException(nameof(seqLen), seqLen, "SequencePacker: seqLen must be at least 2");
        var result = new List<TrainingSequence>();
        int truncatedRows = 0, packed = 0;
        long truncatedTokens = 0, padding = 0, trained = 0;
        int[]? tokens = null, targets = null;
        int fill = 0, samples = 0, lastToken = -1;

        void Flush()
        {
            if (tokens is null) return;
            for (int t = fill; t < seqLen; t++) { tokens[t] = padId; targets![t] = CrossEntropy.IgnoreIndex; }
            padding += seqLen - fill;
            if (samples > 1) packed++;
            result.Add(new TrainingSequence(tokens, targets!, samples));
            tokens = null; targets = null; fill = 0; samples = 0;
        }

        foreach (var ex in examples)
        {
            int n = ex.Length;
            if (n == 0) continue;
            if (n > seqLen) { truncatedRows++; truncatedTokens += n - seqLen; n = seqLen; }
            bool needSep = tokens is not null && eosId is int eos && lastToken != eos;
            int need = n + (needSep ? 1 : 0);
            if (tokens is not null && (!pack || fill + need > seqLen)) { Flush(); needSep = false; }
            if (tokens is null) { tokens = new int[seqLen]; targets = new int[seqLen]; }
            if (needSep)
            {
                tokens[fill] = eosId!.Value;
                targets![fill] = CrossEntropy.IgnoreIndex;
                fill++;
            }
            for (int t = 0; t < n; t++)
            {
                tokens[fill + t] = ex.Tokens[t];
                bool next = t + 1 < n && ex.Loss[t + 1];
                targets![fill + t] = next ? ex.Tokens[t + 1] : CrossEntropy.IgnoreIndex;
                if (next) trained++;
            }
            fill += n;
            samples++;
            lastToken = ex.Tokens[n - 1];
        }
        Flush();
        return new PackResult(result, truncatedRows, truncatedTokens, packed, padding, trained);
    }

    /// <summary>Cuts a token stream into windows: window k has inputs <c>stream[kT .. kT+T)</c> and targets
    /// <c>stream[kT+1 .. kT+T+1)</c>; a last partial window is padded (its final stream token stays as an input
    /// whose target is ignored). Every target is trained on.</summary>
    public static PackResult Windows(ReadOnlySpan<int> stream, int seqLen, int padId)
    {
        if (seqLen < 2) throw new ArgumentOutOfRangeException(nameof(seqLen), seqLen, "SequencePacker: seqLen must be at least 2");
        var result = new List<TrainingSequence>();
        long padding = 0, trained = 0;
        for (int start = 0; start + 1 < stream.Length; start += seqLen)
        {
            int n = Math.Min(seqLen, stream.Length - 1 - start); // positions with a target
            var tokens = new int[seqLen];
            var targets = new int[seqLen];
            stream.Slice(start, n).CopyTo(tokens);
            stream.Slice(start + 1, n).CopyTo(targets);
            for (int t = n; t < seqLen; t++) { tokens[t] = padId; targets[t] = CrossEntropy.IgnoreIndex; }
            if (n < seqLen) tokens[n] = stream[start + n]; // the stream's last token, an input without a target
            padding += Math.Max(0, seqLen - n - 1);
            trained += n;
            result.Add(new TrainingSequence(tokens, targets, 1));
        }
        return new PackResult(result, 0, 0, 0, padding, trained);
    }
}
