using System.Buffers.Binary;
using System.Text;
using EdgeTune.Models;
using EdgeTune.Tests.Formats;
using EdgeTune.Text;

namespace EdgeTune.Tests.Models;

/// <summary>ModelLoader checks that every id the tokenizer can produce has a row in the model's embedding.</summary>
public sealed class ModelLoaderVocabularyTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [SkippableFact]
    public void TokenizerLargerThanTheModel_IsRefusedAtLoad_NamingBothFilesAndSizes()
    {
        string model = TestAssets.Require("stories260K/stories260K.bin");
        string gpt2 = TestAssets.Require("tokenizers/gpt2");
        var e = Assert.Throws<InvalidDataException>(() => ModelLoader.Load(model, gpt2));
        Assert.Contains($"tokenizer '{gpt2}' has 50257 token ids", e.Message);
        Assert.Contains($"the vocabulary of model '{model}' has only 512", e.Message);
    }

    [SkippableFact]
    public void AddedTokensCount_TowardsTheTokenizerSize()
    {
        // tok512.model (512 pieces) plus a chat marker that tokenizer_config.json adds as id 512: one id too many.
        string folder = _dir.File("tok");
        Directory.CreateDirectory(folder);
        File.Copy(TestAssets.Require("stories260K/tok512.model"), Path.Combine(folder, "tokenizer.model"));
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"),
            """{ "added_tokens_decoder": { "512": { "content": "<|im_end|>", "special": true } } }""");
        Assert.Equal(513, TokenizerLoader.Load(folder).VocabSize);
        string model = TestAssets.Require("stories260K/stories260K.bin");
        var e = Assert.Throws<InvalidDataException>(() => ModelLoader.Load(model, folder));
        Assert.Contains($"tokenizer '{folder}' has 513 token ids (added tokens included)", e.Message);
        Assert.Contains($"the vocabulary of model '{model}' has only 512", e.Message);
        Assert.Contains("ids 512..512", e.Message);
    }

    [SkippableFact]
    public void SmallerTokenizer_IsFine()
    {
        // The first 300 pieces of tok512: every id it makes is a row of the 512-row embedding.
        var tok512 = Llama2cTokenizer.Load(TestAssets.Require("stories260K/tok512.bin"));
        string path = WriteLlama2cTokenizer("tok300.bin", Enumerable.Range(0, 300).Select(i => (tok512.IdToToken(i)!, tok512.Score(i))).ToArray());
        using var loaded = ModelLoader.Load(TestAssets.Require("stories260K/stories260K.bin"), path);
        Assert.Equal(300, loaded.RequireTokenizer().VocabSize);
        Assert.Equal(512, loaded.Model.VocabSize);
        int[] ids = loaded.RequireTokenizer().Encode("Once upon a time", addBos: true);
        Assert.All(ids, id => Assert.InRange(id, 0, 299));
        var logits = new float[512];
        using var cache = loaded.Model.CreateCache(ids.Length);
        loaded.Model.Forward(ids, cache, logits);
        Assert.All(logits, x => Assert.True(float.IsFinite(x)));
    }

    [Fact]
    public void CheckVocabularies_AllowsEqualAndSmaller()
    {
        ModelLoader.CheckVocabularies("m", 100, "t", 100);
        ModelLoader.CheckVocabularies("m", 128, "t", 100);
        Assert.Throws<InvalidDataException>(() => ModelLoader.CheckVocabularies("m", 100, "t", 101));
    }

    /// <summary>A llama2.c tokenizer.bin: int32 max length, then per piece float32 score, int32 length, bytes.</summary>
    private string WriteLlama2cTokenizer(string name, (string Piece, float Score)[] pieces)
    {
        using var ms = new MemoryStream();
        Span<byte> four = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(four, pieces.Max(p => Encoding.UTF8.GetByteCount(p.Piece)));
        ms.Write(four);
        foreach (var (p, score) in pieces)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(p);
            BinaryPrimitives.WriteSingleLittleEndian(four, score);
            ms.Write(four);
            BinaryPrimitives.WriteInt32LittleEndian(four, bytes.Length);
            ms.Write(four);
            ms.Write(bytes);
        }
        string path = _dir.File(name);
        File.WriteAllBytes(path, ms.ToArray());
        return path;
    }
}
