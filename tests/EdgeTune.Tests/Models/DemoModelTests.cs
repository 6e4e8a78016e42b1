using EdgeTune.Autograd;
using EdgeTune.Models;

namespace EdgeTune.Tests.Models;

public class DemoModelTests
{
    [Fact]
    public void ConfigIsASmallByteLevelLlama()
    {
        var c = DemoModel.Config;
        c.Validate("demo");
        Assert.Equal("llama", c.ModelType);
        Assert.Equal(259, c.VocabSize);
        Assert.Equal(c.HiddenSize, c.NumAttentionHeads * c.HeadDim);
        Assert.Equal(0, c.NumAttentionHeads % c.NumKeyValueHeads);
        Assert.Equal(256, c.BosTokenId);
        Assert.Equal([257], c.EosTokenIds);
        Assert.Equal(258, c.PadTokenId);
        // 259·128 embedding + 4 × (2·128² + 2·64·128 + 3·344·128 + 2·128) + 128 final norm
        Assert.Equal(259L * 128 + 4 * (2 * 128 * 128 + 2 * 64 * 128 + 3 * 344 * 128 + 256) + 128, DemoModel.ParameterCount);
    }

    [Fact]
    public void SameSeedSameWeightsAndLossStartsNearUniform()
    {
        using var a = DemoModel.Create(7);
        using var b = DemoModel.Create(7);
        using var c = DemoModel.Create(8);
        Assert.True(a.Embed.Value.Span<float>().SequenceEqual(b.Embed.Value.Span<float>()));
        Assert.False(a.Embed.Value.Span<float>().SequenceEqual(c.Embed.Value.Span<float>()));
        Assert.True(a.TiedHead);
        Assert.All(a.Parameters, p => Assert.True(p.Trainable));

        int[] tokens = "Genmaicha at 80 C"u8.ToArray().Select(x => (int)x).ToArray();
        int[] targets = [.. tokens[1..], DemoModel.EosId];
        using var tape = new Tape { IsRecording = false };
        double loss = a.Loss(tape, tokens, targets, 1, tokens.Length).Item();
        Assert.InRange(loss, Math.Log(259) - 0.1, Math.Log(259) + 0.1);
    }
}
