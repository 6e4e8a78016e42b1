using System.Text;
using EdgeTune.Text;

namespace EdgeTune.Tests.Text;

/// <summary>
/// llama.cpp's tokenizer test vectors (models/ggml-vocab-*.gguf.inp/.out): the .inp holds 46 texts separated by
/// "\n__ggml_vocab_test__\n", the .out one line of expected ids per text (no BOS, HF add_special_tokens=False).
/// </summary>
public class LlamaCppVocabTests
{
    internal static (string Text, int[] Ids)[] ReadVectors(string name)
    {
        string inp = File.ReadAllText(TestAssets.Require($"llamacpp-vocab/{name}.inp"), Encoding.UTF8);
        string[] outLines = File.ReadAllText(TestAssets.Require($"llamacpp-vocab/{name}.out")).Split('\n');
        string[] texts = inp.Split("\n__ggml_vocab_test__\n");
        Assert.Equal("", texts[^1]);
        var result = new (string, int[])[texts.Length - 1];
        for (int i = 0; i < result.Length; i++)
            result[i] = (texts[i], outLines[i].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray());
        return result;
    }

    internal static int CheckAll(ITokenizer tok, string name, bool roundTrip, Func<string, bool>? knownDeviation = null)
    {
        var vectors = ReadVectors(name);
        Assert.Equal(46, vectors.Length);
        var failures = new List<string>();
        int deviations = 0;
        foreach (var (text, ids) in vectors)
        {
            if (knownDeviation?.Invoke(text) == true)
            {
                Assert.False(tok.Encode(text, parseSpecial: false).SequenceEqual(ids), $"{Escape(text)} now matches; drop it from the known deviations");
                deviations++;
                continue;
            }
            int[] got = tok.Encode(text, addBos: false, parseSpecial: false);
            if (!got.SequenceEqual(ids))
                failures.Add($"{Escape(text)}: expected [{string.Join(' ', ids)}] got [{string.Join(' ', got)}]");
            else if (roundTrip && tok.Decode(got) != text)
                failures.Add($"{Escape(text)}: decode gave {Escape(tok.Decode(got))}");
        }
        Assert.True(failures.Count == 0, $"{name}: {failures.Count}/46 failed:\n" + string.Join("\n", failures));
        return deviations;
    }

    private static string Escape(string s) => "'" + s.Replace("\n", "\\n").Replace("\t", "\\t") + "'";

    [SkippableFact]
    public void Gpt2_VocabMerges_AllVectorsExact() =>
        _ = CheckAll(TestTokenizers.Get("tokenizers/gpt2"), "ggml-vocab-gpt-2.gguf", roundTrip: true);

    [SkippableFact]
    public void Qwen2_VocabMerges_AllVectorsExact()
    {
        var tok = TestTokenizers.Get("tokenizers/qwen2.5-0.5b");
        Assert.Equal(151665, tok.VocabSize);
        Assert.Equal(151643, tok.EosId); // base model: <|endoftext|>
        // Qwen2 normalizes to NFC, so only texts already in NFC round-trip; all 46 are.
        _ = CheckAll(tok, "ggml-vocab-qwen2.gguf", roundTrip: true);
    }

    [SkippableFact]
    public void Phi3_TokenizerJson_AllVectorsExact() =>
        _ = CheckAll(TestTokenizers.Get("tokenizers/phi-3-mini-4k-instruct"), "ggml-vocab-phi-3.gguf", roundTrip: false);

    [SkippableFact]
    public void LlamaSpm_TinyLlamaTokenizerJson_AllVectorsExact() =>
        _ = CheckAll(TestTokenizers.Get("tokenizers/tinyllama-1.1b-chat-v1.0/tokenizer.json"), "ggml-vocab-llama-spm.gguf", roundTrip: false);

    /// <summary>The tokenizer.model goes through our SentencePiece BPE port, which breaks equal-score ties leftmost as
    /// SentencePiece does: all 46 exact, the two inputs with "!!!!!!" included (Microsoft.ML.Tokenizers 2.0.1 gives
    /// ▁! !! !!! there where SentencePiece and HF give ▁! !!! !!).</summary>
    [SkippableFact]
    public void LlamaSpm_TinyLlamaTokenizerModel_AllVectorsExact()
    {
        var tok = TestTokenizers.Get("tokenizers/tinyllama-1.1b-chat-v1.0/tokenizer.model");
        Assert.True(Assert.IsType<SentencePieceModelTokenizer>(tok).UsesSentencePieceBpePort);
        Assert.Equal(0, CheckAll(tok, "ggml-vocab-llama-spm.gguf", roundTrip: false));
    }
}
