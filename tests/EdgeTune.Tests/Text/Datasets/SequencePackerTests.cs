using EdgeTune.Tensors;
using EdgeTune.Text.Datasets;

namespace EdgeTune.Tests.Text.Datasets;

public class SequencePackerTests
{
    private const int I = CrossEntropy.IgnoreIndex;
    private const int Eos = 99, Pad = 0;

    private static TokenizedExample Ex(int line, int[] tokens, bool[]? loss = null) =>
        new(line, tokens, loss ?? tokens.Select(_ => true).ToArray());

    [Fact]
    public void Packing_SeparatesWithEos_NoTargetAcrossBoundary()
    {
        var a = Ex(1, [1, 2, 3, Eos]);                                       // ends with EOS: no separator needed
        var b = Ex(2, [4, 5, 6], [false, false, true]);                      // prompt 4,5; response 6
        var c = Ex(3, [7, 8]);
        var r = SequencePacker.Pack([a, b, c], 10, pack: true, Eos, Pad);
        var s = Assert.Single(r.Sequences);
        Assert.Equal([1, 2, 3, Eos, 4, 5, 6, Eos, 7, 8], s.Tokens);
        Assert.Equal([2, 3, Eos, I, I, 6, I, I, 8, I], s.Targets);
        Assert.Equal(3, s.Samples);
        Assert.Equal(1, r.PackedSequences);
        Assert.Equal(5, r.TrainedTokens);
        Assert.Equal(0, r.PaddingTokens);
    }

    [Fact]
    public void Packing_StartsNewSequence_WhenNextDoesNotFit_AndPads()
    {
        var r = SequencePacker.Pack([Ex(1, [1, 2, 3]), Ex(2, [4, 5, 6]), Ex(3, [7])], 6, pack: true, Eos, Pad);
        Assert.Equal(2, r.Sequences.Count);
        Assert.Equal([1, 2, 3, Pad, Pad, Pad], r.Sequences[0].Tokens); // no separator before padding
        Assert.Equal([2, 3, I, I, I, I], r.Sequences[0].Targets);
        Assert.Equal([4, 5, 6, Eos, 7, Pad], r.Sequences[1].Tokens);
        Assert.Equal([5, 6, I, I, I, I], r.Sequences[1].Targets);
        Assert.Equal(1, r.PackedSequences);
        Assert.Equal(4, r.PaddingTokens);
    }

    [Fact]
    public void NoPacking_OneSamplePerSequence_Truncates()
    {
        var r = SequencePacker.Pack([Ex(1, [1, 2]), Ex(2, [1, 2, 3, 4, 5, 6, 7])], 4, pack: false, Eos, Pad);
        Assert.Equal(2, r.Sequences.Count);
        Assert.Equal([1, 2, Pad, Pad], r.Sequences[0].Tokens);
        Assert.Equal([1, 2, 3, 4], r.Sequences[1].Tokens);
        Assert.Equal([2, 3, 4, I], r.Sequences[1].Targets);
        Assert.Equal(1, r.TruncatedRows);
        Assert.Equal(3, r.TruncatedTokens);
        Assert.Equal(0, r.PackedSequences);
    }

    [Fact]
    public void Windows_TargetIsNextToken_LastWindowPadded()
    {
        int[] stream = Enumerable.Range(10, 9).ToArray(); // 10..18
        var r = SequencePacker.Windows(stream, 4, Pad);
        Assert.Equal(2, r.Sequences.Count);
        Assert.Equal([10, 11, 12, 13], r.Sequences[0].Tokens);
        Assert.Equal([11, 12, 13, 14], r.Sequences[0].Targets);
        Assert.Equal([14, 15, 16, 17], r.Sequences[1].Tokens);
        Assert.Equal([15, 16, 17, 18], r.Sequences[1].Targets);
        var r2 = SequencePacker.Windows(stream.AsSpan(0, 7), 4, Pad);
        Assert.Equal([14, 15, 16, Pad], r2.Sequences[1].Tokens); // the last token is kept as an input without a target
        Assert.Equal([15, 16, I, I], r2.Sequences[1].Targets);
        Assert.Equal(6, r2.TrainedTokens);
        Assert.Empty(SequencePacker.Windows([5], 4, Pad).Sequences);
    }
}
