using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using EdgeTune.Compression.Distillation;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Compression.Distillation;

/// <summary>Top-k selection of teacher logits: the k largest in descending order (ties in id order) with exact log-softmax values.</summary>
public class TeacherTargetsTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(7, 3)]
    [InlineData(37, 37)]
    [InlineData(64, 5)]
    public void TopKOfMatchesASortOfEveryRow(int vocab, int k)
    {
        const int rows = 9;
        var rng = new Rng(90 + (ulong)vocab);
        var logits = new float[rows * vocab];
        for (int i = 0; i < logits.Length; i++) logits[i] = MathF.Round((float)(rng.NextDouble() * 8), 0); // many ties
        var top = TeacherTargets.TopKOf(logits, rows, vocab, k);
        Assert.True(top.IsTopK);
        for (int r = 0; r < rows; r++)
        {
            var row = logits.AsSpan(r * vocab, vocab).ToArray();
            var expected = Enumerable.Range(0, vocab).OrderByDescending(j => row[j]).ThenBy(j => j).Take(k).ToArray();
            Assert.Equal(expected, top.Ids!.AsSpan(r * k, k).ToArray());
            double lse = Math.Log(row.Sum(v => Math.Exp(v)));
            for (int j = 0; j < k; j++) Assert.Equal(row[expected[j]] - lse, top.Values[r * k + j], 5);
        }
    }
}
