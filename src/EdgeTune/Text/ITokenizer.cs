namespace EdgeTune.Text;

/// <summary>
/// A text tokenizer: text to token ids and back. Implementations: <see cref="ByteLevelBpeTokenizer"/>
/// (GPT-2, Qwen2, Llama 3), <see cref="SentencePieceBpeTokenizer"/> (tokenizer.json with byte fallback:
/// Llama 2, TinyLlama, Mistral, Phi-3), <see cref="SentencePieceModelTokenizer"/> (tokenizer.model) and
/// <see cref="Llama2cTokenizer"/> (llama2.c tokenizer.bin). Load any of them with <see cref="TokenizerLoader"/>.
/// </summary>
public interface ITokenizer
{
    /// <summary>Number of ids (the largest id + 1, added tokens included).</summary>
    int VocabSize { get; }
    int? BosId { get; }
    int? EosId { get; }
    int? PadId { get; }
    int? UnkId { get; }
    /// <summary>True when the model expects BOS in front of a prompt (tokenizer_config add_bos_token).</summary>
    bool AddBosByDefault { get; }
    /// <summary>Added/special tokens that are split out of the text before the model sees it (content to id).</summary>
    IReadOnlyDictionary<string, int> SpecialTokens { get; }

    /// <summary>Encodes <paramref name="text"/>. With <paramref name="parseSpecial"/> the text of a special token
    /// (e.g. "&lt;|im_start|&gt;") becomes its id; otherwise it is encoded as plain text.</summary>
    int[] Encode(string text, bool addBos = false, bool addEos = false, bool parseSpecial = true);

    /// <summary>Decodes ids to text; invalid UTF-8 becomes U+FFFD. Special tokens are written as their text
    /// unless <paramref name="skipSpecial"/>.</summary>
    string Decode(ReadOnlySpan<int> ids, bool skipSpecial = false);

    /// <summary>The raw bytes that <paramref name="id"/> stands for. <paramref name="atStart"/>: no text token
    /// came before it, so SentencePiece-style tokenizers drop the dummy-prefix space.</summary>
    ReadOnlySpan<byte> TokenBytes(int id, bool atStart);

    /// <summary>True for control/special ids (BOS, EOS, added special tokens).</summary>
    bool IsSpecial(int id);

    /// <summary>The vocabulary string of <paramref name="id"/> (e.g. "Ġthe", "▁the", "&lt;0x0A&gt;"), or null.</summary>
    string? IdToToken(int id);

    /// <summary>The id of a vocabulary string, or null.</summary>
    int? TokenToId(string token);

    /// <summary>A decoder for token-by-token streaming that never splits a UTF-8 character.</summary>
    StreamingDecoder CreateStreamingDecoder(bool skipSpecial = false) => new(this, skipSpecial);
}
