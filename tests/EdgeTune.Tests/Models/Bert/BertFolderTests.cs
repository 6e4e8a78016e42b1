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
    public void OtherPoolingThanTheMeanIsRefusedNamingTheField()
    {
        string folder = TinyFolder(_dir);
        File.WriteAllText(Path.Combine(folder, "1_Pooling", "config.json"), """{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}""");
        var e = Assert.Throws<CheckpointFormatException>(() => BertFolder.Load(folder));
        Assert.Contains("pooling_mode_cls_token", e.Message);
        File.Delete(Path.Combine(folder, "vocab.txt"));
        Assert.Throws<FileNotFoundException>(() => BertFolder.Load(folder));
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
