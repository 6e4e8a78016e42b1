namespace EdgeTune.Models.Bert;

/// <summary>
/// A padded batch for a BERT encoder: row-major [Batch, Length] token ids, attention mask (1 = real token,
/// 0 = padding) and token-type (segment) ids.
/// </summary>
public sealed record BertBatch(int[] InputIds, int[] AttentionMask, int[] TokenTypeIds, int Batch, int Length)
{
    /// <summary>Pads <paramref name="sequences"/> with <paramref name="padId"/> to the longest one; token types are all 0.</summary>
    public static BertBatch Pad(IReadOnlyList<IReadOnlyList<int>> sequences, int padId = 0)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        if (sequences.Count == 0) throw new ArgumentException("a batch needs at least one sequence", nameof(sequences));
        int length = sequences.Max(s => s.Count);
        if (length == 0) throw new ArgumentException("every sequence is empty", nameof(sequences));
        int b = sequences.Count;
        var ids = new int[b * length];
        var mask = new int[b * length];
        Array.Fill(ids, padId);
        for (int i = 0; i < b; i++)
            for (int t = 0; t < sequences[i].Count; t++)
            {
                ids[i * length + t] = sequences[i][t];
                mask[i * length + t] = 1;
            }
        return new BertBatch(ids, mask, new int[b * length], b, length);
    }

    /// <exception cref="ArgumentException">Array sizes disagree with Batch × Length, or a row has no attended token.</exception>
    internal void Validate()
    {
        if (Batch <= 0 || Length <= 0) throw new ArgumentException($"batch {Batch} × length {Length} is empty");
        int n = checked(Batch * Length);
        if (InputIds.Length != n || AttentionMask.Length != n || TokenTypeIds.Length != n)
            throw new ArgumentException($"ids {InputIds.Length}, mask {AttentionMask.Length} and token types {TokenTypeIds.Length} must each hold {Batch} × {Length} = {n} values");
        for (int b = 0; b < Batch; b++)
        {
            bool any = false;
            for (int t = 0; t < Length && !any; t++) any = AttentionMask[b * Length + t] != 0;
            if (!any) throw new ArgumentException($"row {b} of the attention mask attends to no token");
        }
    }
}
