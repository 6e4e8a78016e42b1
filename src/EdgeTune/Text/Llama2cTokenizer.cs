using System.Buffers.Binary;
using System.Text;
using EdgeTune.Text.Internal;

namespace EdgeTune.Text;

/// <summary>
/// llama2.c's tokenizer.bin (e.g. stories260K's tok512.bin): int32 max_token_length, then per id a float32
/// score, an int32 byte length and the piece bytes. Ids 0/1/2 are &lt;unk&gt;/BOS/EOS, ids 3..258 the byte
/// tokens &lt;0x00&gt;..&lt;0xFF&gt;. Encoding follows llama2.c: a dummy-prefix space, one piece per code point
/// (or its UTF-8 bytes as id byte+3), then repeatedly merge the adjacent pair whose merged piece has the
/// highest score. Decoding turns &lt;0xNN&gt; into the raw byte and drops the space after BOS.
/// </summary>
public sealed class Llama2cTokenizer : TokenizerBase
{
    private const int ByteOffset = 3;
    private readonly string[] _pieces;
    private readonly byte[][] _pieceBytes;
    private readonly float[] _scores;
    private readonly Dictionary<string, int> _lookup;

    public Llama2cTokenizer(string[] pieces, float[] scores, int maxTokenLength)
        : base([], bosId: 1, eosId: 2, padId: null, unkId: 0, addBosByDefault: true)
    {
        ArgumentNullException.ThrowIfNull(pieces);
        ArgumentNullException.ThrowIfNull(scores);
        if (pieces.Length != scores.Length)
            throw new ArgumentException($"Llama2cTokenizer: {pieces.Length} pieces but {scores.Length} scores");
        if (pieces.Length < ByteOffset + 256)
            throw new ArgumentException($"Llama2cTokenizer: vocabulary of {pieces.Length} is too small; expected at least {ByteOffset + 256} (3 specials + 256 byte tokens)");
        _pieces = pieces;
        _scores = scores;
        MaxTokenLength = maxTokenLength;
        _pieceBytes = pieces.Select(p => Encoding.UTF8.GetBytes(p)).ToArray();
        _lookup = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < pieces.Length; i++) _lookup.TryAdd(pieces[i], i);
    }

    /// <summary>Reads a llama2.c tokenizer.bin; the vocabulary size is the number of records in the file.</summary>
    public static Llama2cTokenizer Load(string path) => Parse(File.ReadAllBytes(path), path);

    /// <summary>Parses the bytes of a llama2.c tokenizer.bin (e.g. decrypted from an encrypted run folder);
    /// <paramref name="path"/> names it in errors.</summary>
    public static Llama2cTokenizer Parse(byte[] data, string path)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Length < 4) throw new InvalidDataException($"{path}: too short for a llama2.c tokenizer (no max_token_length header)");
        int maxLen = BinaryPrimitives.ReadInt32LittleEndian(data);
        var pieces = new List<string>();
        var scores = new List<float>();
        int pos = 4;
        while (pos < data.Length)
        {
            if (pos + 8 > data.Length) throw new InvalidDataException($"{path}: record {pieces.Count} truncated at byte {pos} (need score and length)");
            float score = BinaryPrimitives.ReadSingleLittleEndian(data.AsSpan(pos));
            int len = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(pos + 4));
            pos += 8;
            if (len < 0 || pos + len > data.Length)
                throw new InvalidDataException($"{path}: record {pieces.Count} has length {len}, beyond the end of the file ({data.Length} bytes)");
            pieces.Add(Encoding.UTF8.GetString(data, pos, len));
            scores.Add(score);
            pos += len;
        }
        return new Llama2cTokenizer(pieces.ToArray(), scores.ToArray(), maxLen);
    }

    public int MaxTokenLength { get; }
    public override int VocabSize => _pieces.Length;
    public float Score(int id) => _scores[id];

    public override string? IdToToken(int id) => (uint)id < (uint)_pieces.Length ? _pieces[id] : null;
    public override int? TokenToId(string token) => _lookup.TryGetValue(token, out int id) ? id : null;

    protected override void EncodeSegment(string text, int offset, List<int> ids)
    {
        // llama2.c adds the dummy prefix only for non-empty text (text here is never empty).
        string s = offset == 0 ? " " + text : text;
        var symbols = new List<int>(s.Length);
        for (int i = 0; i < s.Length;)
        {
            int len = char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]) ? 2 : 1;
            string cp = s.Substring(i, len);
            if (_lookup.TryGetValue(cp, out int id)) symbols.Add(id);
            else foreach (byte b in Encoding.UTF8.GetBytes(cp)) symbols.Add(b + ByteOffset);
            i += len;
        }
        PairMerger.Merge(symbols, TryMerge);
        ids.AddRange(symbols);
    }

    private bool TryMerge(int left, int right, out double priority, out int merged)
    {
        if (_lookup.TryGetValue(_pieces[left] + _pieces[right], out merged))
        {
            priority = -(double)_scores[merged];
            return true;
        }
        priority = 0;
        return false;
    }

    protected override bool IsModelControl(int id) => id <= 2;

    protected override byte[] ModelTokenBytes(int id, bool atStart)
    {
        if (id >= ByteOffset && id < ByteOffset + 256) return [(byte)(id - ByteOffset)];
        byte[] b = _pieceBytes[id];
        if (atStart && b.Length > 0 && b[0] == (byte)' ') return b[1..];
        return b;
    }
}
