using EdgeTune.Text;

namespace EdgeTune.Tests.Text;

/// <summary>BOS/EOS/PAD that tokenizer_config.json leaves unnamed come from generation_config.json (Qwen3's case).</summary>
public class GenerationConfigFallbackTests
{
    private static string Folder(string tokenizerConfig, string? generationConfig)
    {
        string dir = Directory.CreateTempSubdirectory("edgetune-gencfg-").FullName;
        File.WriteAllText(Path.Combine(dir, "vocab.json"), """{"a": 0, "b": 1, "ab": 2, "<|endoftext|>": 3, "<|im_end|>": 4}""");
        File.WriteAllText(Path.Combine(dir, "merges.txt"), "#version: 0.2\na b\n");
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), tokenizerConfig);
        if (generationConfig is not null) File.WriteAllText(Path.Combine(dir, "generation_config.json"), generationConfig);
        return dir;
    }

    private const string QwenLikeConfig = """
        {"tokenizer_class": "Qwen2Tokenizer", "bos_token": null, "eos_token": "<|im_end|>", "pad_token": null,
         "added_tokens_decoder": {"3": {"content": "<|endoftext|>", "special": true}, "4": {"content": "<|im_end|>", "special": true}}}
        """;

    [Fact]
    public void NullBosAndPad_TakenFromGenerationConfig_KnownIdsOnly()
    {
        string dir = Folder(QwenLikeConfig, """{"bos_token_id": 3, "eos_token_id": [3, 4], "pad_token_id": 99}""");
        try
        {
            var tok = TokenizerLoader.Load(dir);
            Assert.Equal(3, tok.BosId); // from generation_config
            Assert.Equal(4, tok.EosId); // tokenizer_config wins over generation_config's first eos id
            Assert.Null(tok.PadId); // 99 is no token of this vocabulary: ignored
            Assert.Equal([3, 2], tok.Encode("ab", addBos: true));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void NoGenerationConfig_LeavesThemUnset()
    {
        string dir = Folder(QwenLikeConfig, null);
        try
        {
            var tok = TokenizerLoader.Load(dir);
            Assert.Null(tok.BosId);
            Assert.Equal(4, tok.EosId);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void MalformedGenerationConfig_NamesFileAndField()
    {
        string dir = Folder(QwenLikeConfig, """{"bos_token_id": "x"}""");
        try
        {
            var e = Assert.Throws<InvalidDataException>(() => TokenizerLoader.Load(dir));
            Assert.Contains("generation_config.json: bos_token_id must be a non-negative integer id", e.Message);
            File.WriteAllText(Path.Combine(dir, "generation_config.json"), """{"eos_token_id": [1, -2]}""");
            e = Assert.Throws<InvalidDataException>(() => TokenizerLoader.Load(dir));
            Assert.Contains("eos_token_id[1]", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }
}
