namespace EdgeTune.Text.Internal;

/// <summary>
/// GPT-2's byte-to-character table: printable bytes (33..126, 161..172, 174..255) stand for themselves, the
/// other 68 bytes are shifted to U+0100.. in byte order (so a space becomes 'Ġ' U+0120).
/// </summary>
internal static class ByteLevelAlphabet
{
    private static readonly char[] ByteToChar = Build();
    private static readonly Dictionary<char, byte> CharToByte = Enumerable.Range(0, 256).ToDictionary(b => ByteToChar[b], b => (byte)b);

    private static char[] Build()
    {
        var map = new char[256];
        int shifted = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
            map[b] = printable ? (char)b : (char)(256 + shifted++);
        }
        return map;
    }

    public static char ToChar(byte b) => ByteToChar[b];

    /// <summary>The byte-level spelling of a text: its UTF-8 bytes, each written as its alphabet character.</summary>
    public static string FromText(string text)
    {
        byte[] utf8 = System.Text.Encoding.UTF8.GetBytes(text);
        return string.Create(utf8.Length, utf8, static (chars, bytes) =>
        {
            for (int i = 0; i < bytes.Length; i++) chars[i] = ByteToChar[bytes[i]];
        });
    }

    /// <summary>Turns a byte-level token string back into bytes; false if a char is outside the alphabet.</summary>
    public static bool TryGetBytes(string token, out byte[] bytes)
    {
        bytes = new byte[token.Length];
        for (int i = 0; i < token.Length; i++)
        {
            if (!CharToByte.TryGetValue(token[i], out byte b)) return false;
            bytes[i] = b;
        }
        return true;
    }
}
