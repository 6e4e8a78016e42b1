using System.Globalization;
using System.Text;

namespace EdgeTune.Text;

/// <summary>
/// A tokenizer that needs no files: ids 0..255 are the raw UTF-8 bytes of the text, then three specials,
/// <see cref="Bos"/> (256, "&lt;|bos|&gt;"), <see cref="Eos"/> (257, "&lt;|eos|&gt;") and <see cref="Pad"/>
/// (258, "&lt;|pad|&gt;"). Any string round-trips exactly through Encode/Decode (the specials' text is parsed
/// into their ids unless parseSpecial is false, in which case it is encoded byte by byte). Used by the
/// offline demo model; streaming decoding works through <see cref="TokenizerBase.TokenBytes"/>.
/// </summary>
public sealed class ByteTokenizer : TokenizerBase
{
    public const int Bos = 256;
    public const int Eos = 257;
    public const int Pad = 258;
    public const string BosText = "<|bos|>";
    public const string EosText = "<|eos|>";
    public const string PadText = "<|pad|>";

    /// <summary>The file that marks a model folder as using this tokenizer (it needs no vocabulary file).</summary>
    public const string MarkerFile = "edgetune_byte_tokenizer.json";

    /// <summary>Writes <see cref="MarkerFile"/> into <paramref name="folder"/>, so TokenizerLoader finds this tokenizer there.</summary>
    public static void WriteMarker(string folder) =>
        File.WriteAllText(Path.Combine(folder, MarkerFile), "{\"type\": \"bytes\", \"bos\": 256, \"eos\": 257, \"pad\": 258}\n");

    private static readonly byte[][] SingleBytes = Enumerable.Range(0, 256).Select(b => new[] { (byte)b }).ToArray();

    /// <param name="addBosByDefault">whether models using it expect BOS in front of a prompt.</param>
    public ByteTokenizer(bool addBosByDefault = true)
        : base([new AddedToken(BosText, Bos), new AddedToken(EosText, Eos), new AddedToken(PadText, Pad)],
            bosId: Bos, eosId: Eos, padId: Pad, unkId: null, addBosByDefault: addBosByDefault)
    {
    }

    public override int VocabSize => 259;

    protected override void EncodeSegment(string text, int offset, List<int> ids)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        ids.EnsureCapacity(ids.Count + bytes.Length);
        foreach (byte b in bytes) ids.Add(b);
    }

    protected override byte[] ModelTokenBytes(int id, bool atStart) => SingleBytes[id];

    /// <summary>Printable ASCII as itself, other bytes as "&lt;0xNN&gt;", specials as their text.</summary>
    public override string? IdToToken(int id) => id switch
    {
        Bos => BosText,
        Eos => EosText,
        Pad => PadText,
        >= 0x21 and <= 0x7E => ((char)id).ToString(),
        >= 0 and < 256 => $"<0x{id:X2}>",
        _ => null,
    };

    public override int? TokenToId(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        switch (token)
        {
            case BosText: return Bos;
            case EosText: return Eos;
            case PadText: return Pad;
        }
        if (token.Length == 1 && token[0] >= 0x21 && token[0] <= 0x7E) return token[0];
        if (token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
            && int.TryParse(token.AsSpan(3, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int b))
            return b;
        return null;
    }
}
