using System.Text;
using EdgeTune.Tensors;
using EdgeTune.Text;

namespace EdgeTune.Tests.Text;

public class ByteTokenizerTests
{
    [Fact]
    public void Ids_AreUtf8Bytes_And_Specials()
    {
        var tok = new ByteTokenizer();
        Assert.Equal(259, tok.VocabSize);
        Assert.Equal((256, 257, 258), (tok.BosId, tok.EosId, tok.PadId));
        Assert.Equal([256, 0x68, 0xC3, 0xA9, 257], tok.Encode("hé", addBos: true, addEos: true));
        Assert.Equal([0x61, 257, 0x62], tok.Encode("a<|eos|>b"));
        Assert.Equal(Encoding.UTF8.GetBytes("a<|eos|>b").Select(b => (int)b), tok.Encode("a<|eos|>b", parseSpecial: false));
        Assert.True(tok.IsSpecial(256) && tok.IsSpecial(258) && !tok.IsSpecial(255));
        Assert.Equal("a", tok.IdToToken('a'));
        Assert.Equal("<0x0A>", tok.IdToToken(10));
        Assert.Equal(10, tok.TokenToId("<0x0A>"));
        Assert.Equal(257, tok.TokenToId("<|eos|>"));
        Assert.Null(tok.IdToToken(259));
        Assert.Equal("hi", tok.Decode([256, 'h', 'i', 257], skipSpecial: true));
        Assert.Equal("<|bos|>hi", tok.Decode([256, 'h', 'i']));
    }

    [Fact]
    public void RandomUnicode_RoundTrips_AndStreams()
    {
        var tok = new ByteTokenizer();
        var rng = new Rng(5);
        string[] alphabet = ["a", "Z", " ", "\n", "é", "ß", "中", "文", "😀", "🚀", "\t", "<", "|"];
        for (int trial = 0; trial < 50; trial++)
        {
            var sb = new StringBuilder();
            int n = rng.NextInt(40);
            for (int i = 0; i < n; i++) sb.Append(alphabet[rng.NextInt(alphabet.Length)]);
            string s = sb.ToString();
            int[] ids = tok.Encode(s);
            Assert.Equal(Encoding.UTF8.GetByteCount(s), ids.Length);
            Assert.Equal(s, tok.Decode(ids));
            var dec = tok.CreateStreamingDecoder();
            var streamed = new StringBuilder();
            foreach (int id in ids) streamed.Append(dec.Push(id));
            streamed.Append(dec.Flush());
            Assert.Equal(s, streamed.ToString());
        }
    }
}
