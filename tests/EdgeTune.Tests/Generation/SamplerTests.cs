using EdgeTune.Generation;

namespace EdgeTune.Tests.Generation;

public class SamplerTests
{
    [Fact]
    public void GreedyPicksArgMaxFirstOnTies()
    {
        var s = new Sampler(SamplingOptions.Greedy);
        Assert.Equal(2, s.Sample(new float[] { 1, 2, 5, 5, -1 }, []));
    }

    [Fact]
    public void TopKOneIsGreedyWhateverTheTemperature()
    {
        var s = new Sampler(new SamplingOptions(Temperature: 5f, TopK: 1, TopP: 1f, Seed: 7));
        for (int i = 0; i < 20; i++) Assert.Equal(3, s.Sample(new float[] { 0.1f, 0.2f, 0.3f, 0.9f, 0.0f }, []));
    }

    [Fact]
    public void TopPKeepsOnlyTheNucleus()
    {
        // probabilities ~ [0.64, 0.24, 0.09, 0.03]: top-p 0.8 keeps ids 0 and 1 only.
        float[] logits = [MathF.Log(0.64f), MathF.Log(0.24f), MathF.Log(0.09f), MathF.Log(0.03f)];
        var s = new Sampler(new SamplingOptions(Temperature: 1f, TopP: 0.8f, Seed: 3));
        var counts = new int[4];
        for (int i = 0; i < 4000; i++) counts[s.Sample((float[])logits.Clone(), [])]++;
        Assert.Equal(0, counts[2] + counts[3]);
        double share0 = counts[0] / 4000.0;
        Assert.InRange(share0, 0.64 / 0.88 - 0.03, 0.64 / 0.88 + 0.03);
    }

    [Fact]
    public void SameSeedSameDraws()
    {
        var o = new SamplingOptions(Temperature: 1f, TopP: 1f, Seed: 99);
        var a = new Sampler(o);
        var b = new Sampler(o);
        float[] logits = Enumerable.Range(0, 50).Select(i => (float)Math.Sin(i)).ToArray();
        for (int i = 0; i < 100; i++) Assert.Equal(a.Sample((float[])logits.Clone(), []), b.Sample((float[])logits.Clone(), []));
    }

    [Fact]
    public void RepetitionPenaltyDemotesSeenTokens()
    {
        var s = new Sampler(new SamplingOptions(Temperature: 0f, RepetitionPenalty: 2f));
        // id 0 has the larger logit but was seen: 3/2 < 2.
        Assert.Equal(1, s.Sample(new float[] { 3f, 2f }, [0]));
    }

    [Fact]
    public void NaNLogitsAreRejected()
    {
        var s = new Sampler(SamplingOptions.Greedy);
        Assert.Throws<ArgumentException>(() => s.Sample(new float[] { 1, float.NaN }, []));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sampler(new SamplingOptions(TopP: 0f)));
    }

    [Fact]
    public void Llama2cSamplerIsDeterministicAndRespectsTopP()
    {
        float[] logits = [4f, 3f, -10f, -10f];
        var a = new Llama2cSampler(1f, 0.9f, 133742);
        var b = new Llama2cSampler(1f, 0.9f, 133742);
        for (int i = 0; i < 200; i++)
        {
            int x = a.Sample((float[])logits.Clone(), []);
            Assert.Equal(x, b.Sample((float[])logits.Clone(), []));
            Assert.InRange(x, 0, 1);
        }
    }
}
