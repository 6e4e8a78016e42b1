using EdgeTune.Formats.Onnx;
using EdgeTune.Models.Bert;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Xunit.Abstractions;

namespace EdgeTune.Tests.Models.Bert;

/// <summary>
/// Our managed BERT forward on the real all-MiniLM-L6-v2 weights against ONNX Runtime running the same ONNX file
/// on the same token batch (its last_hidden_state mean-pooled over the mask and normalised here).
/// </summary>
public sealed class BertEncoderParityTests(ITestOutputHelper output)
{
    private static readonly string[] Texts =
    [
        "Hello world",
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The girl is carrying a baby.",
        "A man is riding a horse.",
        "A woman is playing violin.",
        "Two men pushed carts through the woods.",
        "A man is riding a white horse on an enclosed ground.",
        "A monkey is playing drums.",
        "Someone in a gorilla costume is playing a set of drums.",
        "ok",
        "!",
        "Unbelievably, the tokenizer splits supercalifragilisticexpialidocious into many wordpieces.",
        "Numbers like 3.14159, 2,718 and 1e-12 appear in technical writing about LayerNorm epsilons.",
        "Café, naïve, résumé: accents are stripped by BERT's uncased normaliser.",
        "東京 is the capital of Japan, and 北京 is the capital of China.",
        "EdgeTune trains small models locally in pure managed C#, with its own tensors, kernels and an autograd tape.",
        "Sentence embeddings are mean-pooled over the attention mask and L2-normalised so that a dot product is a cosine similarity; "
            + "this sentence is deliberately much longer than the others so that the batch contains plenty of padding for the short ones.",
        "   leading and trailing whitespace   ",
        "MIXED case TEXT Should Lower-Case The Same As lower case text",
    ];

    [Fact]
    public void SentenceEmbeddingsMatchOnnxRuntimeOnTheSameFile()
    {
        var batch = MiniLmAssets.Tokenizer.EncodeBatch(Texts);
        Assert.Equal(20, batch.Batch);
        Assert.Contains(0, batch.AttentionMask); // the batch really is padded

        float[][] ours = MiniLmAssets.Encoder.SentenceEmbeddings(batch);
        float[][] reference = OnnxRuntimeEmbeddings(batch);

        double worstDiff = 0, worstCos = 1;
        for (int i = 0; i < Texts.Length; i++)
        {
            Assert.Equal(384, ours[i].Length);
            double dot = 0, na = 0, nb = 0, diff = 0;
            for (int d = 0; d < 384; d++)
            {
                dot += (double)ours[i][d] * reference[i][d];
                na += (double)ours[i][d] * ours[i][d];
                nb += (double)reference[i][d] * reference[i][d];
                diff = Math.Max(diff, Math.Abs(ours[i][d] - reference[i][d]));
            }
            double cos = dot / Math.Sqrt(na * nb);
            worstDiff = Math.Max(worstDiff, diff);
            worstCos = Math.Min(worstCos, cos);
            Assert.InRange(Math.Sqrt(na), 0.9999, 1.0001);
        }
        output.WriteLine($"20 texts, padded length {batch.Length}: max |ours - ORT| = {worstDiff:E3}, min cosine = {worstCos:F9}");
        Assert.True(worstDiff <= 1e-4, $"max abs diff {worstDiff:E3}");
        Assert.True(worstCos >= 0.99999, $"min cosine {worstCos:F9}");
    }

    [Fact]
    public void PaddingDoesNotChangeAnEmbedding()
    {
        var tok = MiniLmAssets.Tokenizer;
        var alone = MiniLmAssets.Encoder.SentenceEmbeddings(tok.EncodeBatch([Texts[1]]))[0];
        var padded = MiniLmAssets.Encoder.SentenceEmbeddings(tok.EncodeBatch([Texts[1], Texts[17]]))[0];
        for (int d = 0; d < alone.Length; d++) Assert.Equal(alone[d], padded[d], 1e-5f);
    }

    [Fact]
    public void SimilarSentencesAreCloserThanUnrelatedOnes()
    {
        var e = MiniLmAssets.Encoder.SentenceEmbeddings(MiniLmAssets.Tokenizer.EncodeBatch(
            ["A man is eating food.", "A man is eating a piece of bread.", "A monkey is playing drums."]));
        float Dot(float[] a, float[] b) { float s = 0; for (int i = 0; i < a.Length; i++) s += a[i] * b[i]; return s; }
        Assert.True(Dot(e[0], e[1]) > Dot(e[0], e[2]) + 0.2f, $"{Dot(e[0], e[1])} vs {Dot(e[0], e[2])}");
    }

    private static float[][] OnnxRuntimeEmbeddings(BertBatch batch)
    {
        using var session = new InferenceSession(MiniLmAssets.ModelBytes);
        int[] dims = [batch.Batch, batch.Length];
        var inputs = new List<NamedOnnxValue>
        {
            NamedOnnxValue.CreateFromTensor("input_ids", new DenseTensor<long>(batch.InputIds.Select(x => (long)x).ToArray(), dims)),
            NamedOnnxValue.CreateFromTensor("attention_mask", new DenseTensor<long>(batch.AttentionMask.Select(x => (long)x).ToArray(), dims)),
            NamedOnnxValue.CreateFromTensor("token_type_ids", new DenseTensor<long>(batch.TokenTypeIds.Select(x => (long)x).ToArray(), dims)),
        };
        using var results = session.Run(inputs, ["last_hidden_state"]);
        var hidden = results.First().AsTensor<float>();
        Assert.Equal([batch.Batch, batch.Length, 384], hidden.Dimensions.ToArray());
        return BertEncoder.MeanPoolNormalize(hidden.ToArray(), batch.AttentionMask, batch.Batch, batch.Length, 384);
    }
}
