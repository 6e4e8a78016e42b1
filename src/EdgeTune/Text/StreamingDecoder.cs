using System.Text;

namespace EdgeTune.Text;

/// <summary>
/// Incremental detokenizer for generation: <see cref="Push"/> one id at a time and get back the text that is
/// complete so far. Bytes of a multi-byte UTF-8 character split over several byte-fallback tokens
/// (e.g. &lt;0xF0&gt;&lt;0x9F&gt;&lt;0x98&gt;&lt;0x80&gt;) are held until the character is whole. The concatenation
/// of all pushed outputs plus <see cref="Flush"/> equals <see cref="ITokenizer.Decode"/> of the same ids.
/// </summary>
public sealed class StreamingDecoder
{
    private readonly ITokenizer _tokenizer;
    private readonly bool _skipSpecial;
    private readonly Decoder _utf8 = new UTF8Encoding(false, false).GetDecoder();
    private readonly char[] _chars = new char[64];
    private bool _atStart = true;

    public StreamingDecoder(ITokenizer tokenizer, bool skipSpecial = false)
    {
        _tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        _skipSpecial = skipSpecial;
    }

    /// <summary>Adds one token; returns the newly completed text (possibly empty).</summary>
    public string Push(int id)
    {
        bool special = _tokenizer.IsSpecial(id);
        if (special && _skipSpecial) return string.Empty;
        var bytes = _tokenizer.TokenBytes(id, _atStart);
        if (!special) _atStart = false;
        return Convert(bytes, flush: false);
    }

    /// <summary>Ends the stream: bytes of an unfinished character come out as U+FFFD.</summary>
    public string Flush() => Convert([], flush: true);

    /// <summary>Forgets all state (a new sequence starts).</summary>
    public void Reset()
    {
        _utf8.Reset();
        _atStart = true;
    }

    private string Convert(ReadOnlySpan<byte> bytes, bool flush)
    {
        int needed = bytes.Length + 8; // each byte yields at most one char, plus held-back bytes
        char[] buffer = needed <= _chars.Length ? _chars : new char[needed];
        int n = _utf8.GetChars(bytes, buffer, flush);
        return n == 0 ? string.Empty : new string(buffer, 0, n);
    }

    /// <summary>Decodes a whole sequence the same way a stream would (used by tokenizers' Decode).</summary>
    internal static string DecodeAll(ITokenizer tokenizer, ReadOnlySpan<int> ids, bool skipSpecial)
    {
        using var bytes = new MemoryStream();
        bool atStart = true;
        foreach (int id in ids)
        {
            bool special = tokenizer.IsSpecial(id);
            if (special && skipSpecial) continue;
            bytes.Write(tokenizer.TokenBytes(id, atStart));
            if (!special) atStart = false;
        }
        return new UTF8Encoding(false, false).GetString(bytes.GetBuffer(), 0, (int)bytes.Length);
    }
}
