namespace EdgeTune.Text.Datasets;

/// <summary>
/// One sample as token ids, with <see cref="Loss"/>[i] true where token i is a target the model learns to predict
/// (response and end-of-turn tokens of instruction/chat data; every token of plain text). <see cref="Line"/>: the
/// source row (1-based), 0 for plain text windows.
/// </summary>
public sealed record TokenizedExample(int Line, int[] Tokens, bool[] Loss)
{
    public int Length => Tokens.Length;

    /// <summary>Number of tokens with the loss on (position 0 included when set, though it is never a target).</summary>
    public int LossTokens => Loss.Count(b => b);
}
