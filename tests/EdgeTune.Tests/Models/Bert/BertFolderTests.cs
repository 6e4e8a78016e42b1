using System.Text.Json;
using EdgeTune.Formats;
using EdgeTune.Models.Bert;
using Microsoft.Extensions.AI;

namespace EdgeTune.Tests.Models.Bert;

/// <summary>Encoders on disk (sentence-transformers folders written from the ONNX weights and read back), the
/// <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/> over them, and the training-data reader.</summary>
public sealed class BertFolderTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "edgetune-bert-" + Guid.NewGuid().ToString("N"));

    public BertFolderTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    internal static readonly string[] TinyVocab =
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "dog", "sat", "ran", "on", "mat", "a", "big", "small", "red", "blue", "##s", ".", "sun", "rain", "is", "hot", "wet"];

    /// <summary>A random tiny encoder saved as a sentence-transformers folder with <see cref="TinyVocab"/>.</summary>
    internal static string TinyFolder(string dir, ulong seed = 3)
    {
        string vocab = Path.Combine(dir, "tiny-vocab.txt");
        File.WriteAllLines(vocab, TinyVocab);
        var config = new BertConfig(TinyVocab.Length, 16, 2, 2, 32, 32, 2);
        using var enc = BertEncoder.CreateRandom(config, seed, std: 0.2f);
        string folder = Path.Combine(dir, "tiny");
        BertFolder.Save(enc, BertWordPiece.FromVocab(vocab), folder);
        return folder;
    }

    [Fact]
    public void ASavedFolderLoadsBackToTheSameEmbeddings()
    {
        string vocab = Path.Combine(_dir, "v.txt");
        File.WriteAllLines(vocab, TinyVocab);
        var tok = BertWordPiece.FromVocab(vocab);
        using var enc = BertEncoder.CreateRandom(new BertConfig(TinyVocab.Length, 16, 2, 4, 24, 20, 2, 1e-6f), 9, std: 0.3f);
        BertFolder.Save(enc, tok, Path.Combine(_dir, "m"));
        foreach (string f in new[] { "config.json", "model.safetensors", "vocab.txt", "modules.json", "1_Pooling/config.json", "tokenizer_config.json" })
            Assert.True(File.Exists(Path.Combine(_dir, "m", f)), f);
        var (loaded, tok2) = BertFolder.Load(Path.Combine(_dir, "m"));
        using (loaded)
        {
            Assert.Equal(enc.Config, loaded.Config);
            var batch = tok.EncodeBatch(["the cat sat on the mat .", "blue suns"]);
            Assert.Equal(batch.InputIds, tok2.EncodeBatch(["the cat sat on the mat .", "blue suns"]).InputIds);
            Assert.Equal(enc.SentenceEmbeddings(batch), loaded.SentenceEmbeddings(batch));
        }
    }

    [Fact]
    public void TheRealMiniLmRoundTripsThroughASentenceTransformersFolder()
    {
        var enc = MiniLmAssets.Encoder;
        BertFolder.Save(enc, MiniLmAssets.Tokenizer, Path.Combine(_dir, "minilm"));
        var modules = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "minilm", "modules.json"))).RootElement;
        Assert.Equal("1_Pooling", modules[1].GetProperty("path").GetString());
        var (loaded, tok) = BertFolder.Load(Path.Combine(_dir, "minilm"));
        using (loaded)
        {
            Assert.Equal(BertConfig.AllMiniLmL6V2, loaded.Config);
            var batch = tok.EncodeBatch(["A man is eating food.", "Sentence embeddings are mean-pooled."]);
            Assert.Equal(enc.SentenceEmbeddings(batch), loaded.SentenceEmbeddings(batch));
        }
    }

    [Fact]
    public void PoolingOtherThanMeanOrClsIsRefusedNamingTheField()
    {
        string folder = TinyFolder(_dir);
        File.WriteAllText(Path.Combine(folder, "1_Pooling", "config.json"), """{"pooling_mode_max_tokens": true, "pooling_mode_mean_tokens": false}""");
        var e = Assert.Throws<CheckpointFormatException>(() => BertFolder.Load(folder));
        Assert.Contains("pooling_mode_max_tokens", e.Message);
        File.WriteAllText(Path.Combine(folder, "1_Pooling", "config.json"), """{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": true}""");
        Assert.Contains("exactly one", Assert.Throws<CheckpointFormatException>(() => BertFolder.Load(folder)).Message);
        File.Delete(Path.Combine(folder, "vocab.txt"));
        Assert.Throws<FileNotFoundException>(() => BertFolder.Load(folder));
    }

    /// <summary>arctic-embed's head: 1_Pooling says [CLS]; modules.json decides Normalize. The embedding is then the first
    /// token's last hidden state (normalised or not), and Save writes the same head back.</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ClsPoolingAndNormalizeComeFromTheFolderAndAreWrittenBack(bool normalize)
    {
        string folder = TinyFolder(_dir);
        File.WriteAllText(Path.Combine(folder, "1_Pooling", "config.json"), """{"word_embedding_dimension": 16, "pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}""");
        if (!normalize)
            File.WriteAllText(Path.Combine(folder, "modules.json"),
                """[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},{"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"}]""");
        var (enc, tok) = BertFolder.Load(folder);
        using (enc)
        {
            Assert.Equal(new SentencePooling(PoolingMode.Cls, normalize), enc.Pooling);
            var batch = tok.EncodeBatch(["the cat sat on the mat .", "blue suns"]);
            float[] hidden = enc.LastHiddenState(batch);
            var got = enc.SentenceEmbeddings(batch);
            for (int b = 0; b < 2; b++)
            {
                var cls = hidden.AsSpan(b * batch.Length * 16, 16).ToArray();
                float norm = normalize ? MathF.Sqrt(cls.Sum(x => x * x)) : 1f;
                for (int d = 0; d < 16; d++) Assert.Equal(cls[d] / norm, got[b][d], 1e-6f);
            }
            string again = Path.Combine(_dir, "again");
            BertFolder.Save(enc, tok, again);
            Assert.Equal(normalize, Directory.Exists(Path.Combine(again, "2_Normalize")));
            var (back, _) = BertFolder.Load(again);
            using (back)
            {
                Assert.Equal(enc.Pooling, back.Pooling);
                Assert.Equal(got, back.SentenceEmbeddings(batch));
            }
        }
    }

    /// <summary>DistilBERT's checkpoint names and config keys (as transformers' DistilBertForSequenceClassification saves them:
    /// distilbert.transformer.layer.N.attention.q_lin …, sa_layer_norm, ffn.lin1/lin2, output_layer_norm; no token types;
    /// dim/n_layers/n_heads/hidden_dim/activation) load into the same encoder as its BERT-named equivalent.</summary>
    [Fact]
    public void ADistilBertFolderEqualsItsBertNamedEquivalent()
    {
        var config = new BertConfig(TinyVocab.Length, 16, 2, 2, 32, 32, 1);
        string vocab = Path.Combine(_dir, "v.txt");
        File.WriteAllLines(vocab, TinyVocab);
        using var random = BertEncoder.CreateRandom(config, 21, std: 0.3f);
        var values = random.Parameters.ToDictionary(p => p.Name, p => p.Value.ToFloatArray());
        values[BertEncoder.Names.TokenType] = new float[16]; // DistilBERT has none: the BERT equivalent adds a zero row
        using var bert = new BertEncoder(config, values);
        string bertFolder = Path.Combine(_dir, "bert");
        BertFolder.Save(bert, BertWordPiece.FromVocab(vocab), bertFolder);

        string distil = Path.Combine(_dir, "distilbert");
        Directory.CreateDirectory(distil);
        File.Copy(vocab, Path.Combine(distil, "vocab.txt"));
        File.WriteAllText(Path.Combine(distil, "config.json"), $$"""
            {"architectures": ["DistilBertForSequenceClassification"], "model_type": "distilbert", "activation": "gelu", "dim": 16, "n_layers": 2,
             "n_heads": 2, "hidden_dim": 32, "max_position_embeddings": 32, "vocab_size": {{TinyVocab.Length}}, "dropout": 0.1, "attention_dropout": 0.1,
             "sinusoidal_pos_embds": false, "tie_weights_": true, "initializer_range": 0.02, "qa_dropout": 0.1, "seq_classif_dropout": 0.2}
            """);
        string DistilName(string name)
        {
            if (name == BertEncoder.Names.TokenType) return "";
            if (name.StartsWith("embeddings.", StringComparison.Ordinal)) return "distilbert." + name;
            var parts = name.Split('.', 4); // encoder.layer.{i}.{rest}
            string rest = parts[3] switch
            {
                var r when r.StartsWith("attention.self.query.", StringComparison.Ordinal) => "attention.q_lin." + r.Split('.')[^1],
                var r when r.StartsWith("attention.self.key.", StringComparison.Ordinal) => "attention.k_lin." + r.Split('.')[^1],
                var r when r.StartsWith("attention.self.value.", StringComparison.Ordinal) => "attention.v_lin." + r.Split('.')[^1],
                var r when r.StartsWith("attention.output.dense.", StringComparison.Ordinal) => "attention.out_lin." + r.Split('.')[^1],
                var r when r.StartsWith("attention.output.LayerNorm.", StringComparison.Ordinal) => "sa_layer_norm." + r.Split('.')[^1],
                var r when r.StartsWith("intermediate.dense.", StringComparison.Ordinal) => "ffn.lin1." + r.Split('.')[^1],
                var r when r.StartsWith("output.dense.", StringComparison.Ordinal) => "ffn.lin2." + r.Split('.')[^1],
                var r when r.StartsWith("output.LayerNorm.", StringComparison.Ordinal) => "output_layer_norm." + r.Split('.')[^1],
                var r => throw new InvalidOperationException(r),
            };
            return $"distilbert.transformer.layer.{parts[2]}.{rest}";
        }
        using var extra = EdgeTune.Tensors.Tensor.Zeros(EdgeTune.Tensors.DType.F32, [16, 16], "pre_classifier.weight");
        SafeTensorsWriter.Write(Path.Combine(distil, "model.safetensors"),
            bert.Parameters.Select(p => (Name: DistilName(p.Name), p.Value)).Where(p => p.Name.Length > 0)
                .Select(p => new KeyValuePair<string, EdgeTune.Tensors.Tensor>(p.Name, p.Value))
                .Append(new("pre_classifier.weight", extra)));

        var (a, tok) = BertFolder.Load(distil);
        var (b, _) = BertFolder.Load(bertFolder);
        using (a)
        using (b)
        {
            Assert.Equal(b.Config, a.Config);
            var batch = tok.EncodeBatch(["the cat sat on the mat .", "a big red dog ran", "rain"]);
            Assert.Equal(b.LastHiddenState(batch), a.LastHiddenState(batch));
            Assert.Equal(b.SentenceEmbeddings(batch), a.SentenceEmbeddings(batch));
            // the BERT names are what LoRA targets and the exporters see
            Assert.Contains(a.Projections(), p => p.Path == "encoder.layer.1.attention.self.query");
        }
        File.WriteAllText(Path.Combine(distil, "config.json"), File.ReadAllText(Path.Combine(distil, "config.json")).Replace("\"gelu\"", "\"relu\""));
        Assert.Contains("activation 'relu'", Assert.Throws<CheckpointFormatException>(() => BertFolder.Load(distil)).Message);
    }

    [Fact]
    public async Task EmbeddingGeneratorGivesTheEncodersSentenceEmbeddings()
    {
        string[] texts = ["Hello world", "A man is eating food.", "A monkey is playing drums."];
        using var gen = new BertEmbeddingGenerator(MiniLmAssets.Encoder, MiniLmAssets.Tokenizer, "all-MiniLM-L6-v2", batchSize: 2);
        IEmbeddingGenerator<string, Embedding<float>> api = gen;
        var result = await api.GenerateAsync(texts);
        var expected = MiniLmAssets.Encoder.SentenceEmbeddings(MiniLmAssets.Tokenizer.EncodeBatch(texts));
        Assert.Equal(3, result.Count);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal("all-MiniLM-L6-v2", result[i].ModelId);
            var v = result[i].Vector.ToArray();
            for (int d = 0; d < 384; d++) Assert.Equal(expected[i][d], v[d], 1e-5f);
        }
        Assert.True(result.Usage!.InputTokenCount > 6);
        Assert.Equal(384, api.GetService<EmbeddingGeneratorMetadata>()!.DefaultModelDimensions);
        await Assert.ThrowsAsync<NotSupportedException>(() => api.GenerateAsync(texts, new EmbeddingGenerationOptions { Dimensions = 128 }));
    }

    [Fact]
    public void DataReaderTakesSelfInstructRowsPairsAndLabels()
    {
        string pairs = Path.Combine(_dir, "p.jsonl");
        File.WriteAllLines(pairs, [
            """{"instruction": "Fix the grammar.", "motivation_app": "Grammarly", "instances": [{"input": "x", "output": "Fixed."}]}""",
            """{"query": "q2", "document": "d2"}""",
            """{"anchor": "a3", "positive": ""}""",
        ]);
        var p = EncoderData.ReadPairs(pairs);
        Assert.Equal([new TextPair("Fix the grammar.", "Fixed."), new TextPair("q2", "d2")], p);
        string labelled = Path.Combine(_dir, "l.jsonl");
        File.WriteAllLines(labelled, ["{\"text\": \"win money\", \"label\": \"spam\"}", "{\"text\": \"lunch?\", \"label\": \"ham\"}", "{\"text\": \"free prize\", \"label\": \"spam\"}"]);
        var (examples, labels) = EncoderData.ReadLabeled(labelled);
        Assert.Equal(["spam", "ham"], labels);
        Assert.Equal([0, 1, 0], examples.Select(e => e.Label));
        File.WriteAllText(pairs, """{"nothing": 1}""");
        var e = Assert.Throws<InvalidDataException>(() => EncoderData.ReadPairs(pairs));
        Assert.Contains(":1: no string field among anchor", e.Message);
    }
}
