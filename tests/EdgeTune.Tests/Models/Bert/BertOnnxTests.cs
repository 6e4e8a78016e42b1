using EdgeTune.Formats.Onnx;
using EdgeTune.Models.Bert;

namespace EdgeTune.Tests.Models.Bert;

/// <summary>The real all-MiniLM-L6-v2 export: its initializers, and how its generated MatMul names map to BERT parameters.</summary>
public sealed class BertOnnxTests
{
    [Fact]
    public void ReadsTheRealGraphsInitializersWithShapesAndTypes()
    {
        var g = MiniLmAssets.Graph;
        var word = g.Initializer("embeddings.word_embeddings.weight");
        Assert.Equal([30522L, 384L], word.Dims);
        Assert.Equal("FLOAT", word.DataTypeName);
        using var t = word.ToTensor();
        Assert.Equal([30522, 384], t.Shape.ToArray());
        Assert.Equal(["input_ids", "attention_mask", "token_type_ids"], g.Inputs);
        Assert.Equal("last_hidden_state", g.Outputs[0]);
        Assert.Contains(g.Nodes, n => n.OpType == "MatMul");

        var positions = g.Initializer("embeddings.position_ids");
        Assert.Equal("INT64", positions.DataTypeName);
        var ex = Assert.Throws<EdgeTune.Formats.CheckpointFormatException>(() => positions.ToTensor());
        Assert.Contains("INT64", ex.Message);
    }

    [Fact]
    public void GeneratedMatMulWeightsAreNamedAfterTheirBiasAndTransposed()
    {
        var g = MiniLmAssets.Graph;
        var p = BertOnnx.Parameters(g);
        for (int l = 0; l < 6; l++)
        {
            foreach (var name in new[] { "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense" })
                Assert.Equal(384 * 384, p[$"encoder.layer.{l}.{name}.weight"].Length);
            Assert.Equal(1536 * 384, p[$"encoder.layer.{l}.intermediate.dense.weight"].Length);
            Assert.Equal(384 * 1536, p[$"encoder.layer.{l}.output.dense.weight"].Length);
        }

        // Layer 0's query MatMul reads initializer B [in=384, out=384]; ours is [out, in], so ours[o, i] == B[i, o].
        var matmul = g.Nodes.First(n => n.OpType == "MatMul" && g.TryGetInitializer(n.Inputs[1], out _));
        var b = g.Initializer(matmul.Inputs[1]).ToFloatArray();
        var q = p["encoder.layer.0.attention.self.query.weight"];
        foreach (var (o, i) in new[] { (0, 1), (5, 300), (383, 0), (200, 17) })
            Assert.Equal(b[i * 384 + o], q[o * 384 + i]);
    }

    [Fact]
    public void WordPieceMatchesBertUncasedIds()
    {
        var tok = MiniLmAssets.Tokenizer;
        // bert-base-uncased vocab: [CLS] 101, hello 7592, world 2088, [SEP] 102.
        Assert.Equal([101, 7592, 2088, 102], tok.Encode("Hello WORLD"));
        var cut = tok.Encode("one two three four five six", maxLength: 4);
        Assert.Equal(4, cut.Length);
        Assert.Equal(101, cut[0]);
        Assert.Equal(102, cut[^1]);
        var batch = tok.EncodeBatch(["hello", "hello world"]);
        Assert.Equal(4, batch.Length);
        Assert.Equal([1, 1, 1, 0, 1, 1, 1, 1], batch.AttentionMask);
        Assert.Equal(tok.PaddingTokenId, batch.InputIds[3]);
    }
}
