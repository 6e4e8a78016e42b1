using System.Buffers.Binary;
using System.Text;

namespace EdgeTune.Text.Internal;

/// <summary>
/// The fields of a SentencePiece <c>ModelProto</c> (sentencepiece_model.proto) that encoding needs, read with a
/// small protobuf wire-format reader: pieces (piece = 1, score = 2, type = 3), trainer_spec (model_type = 3,
/// treat_whitespace_as_suffix = 24, byte_fallback = 35, unk/bos/eos/pad ids = 40..43) and normalizer_spec
/// (name = 1, precompiled_charsmap = 2, add_dummy_prefix = 3, remove_extra_whitespaces = 4, escape_whitespaces = 5).
/// Defaults are the proto's: UNIGRAM, no byte fallback, unk 0 / bos 1 / eos 2 / pad -1, and the three normalizer
/// flags true.
/// </summary>
internal sealed class SentencePieceProto
{
    public enum PieceType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }

    public enum ModelType { Unigram = 1, Bpe = 2, Word = 3, Char = 4 }

    public readonly record struct Piece(string Text, float Score, PieceType Type);

    public List<Piece> Pieces { get; } = [];
    public ModelType Model { get; private set; } = ModelType.Unigram;
    public bool ByteFallback { get; private set; }
    public bool TreatWhitespaceAsSuffix { get; private set; }
    public int UnkId { get; private set; }
    public int BosId { get; private set; } = 1;
    public int EosId { get; private set; } = 2;
    public int PadId { get; private set; } = -1;
    public string NormalizerName { get; private set; } = "";
    public int PrecompiledCharsmapLength { get; private set; }
    public bool AddDummyPrefix { get; private set; } = true;
    public bool RemoveExtraWhitespaces { get; private set; } = true;
    public bool EscapeWhitespaces { get; private set; } = true;

    /// <exception cref="InvalidDataException">the bytes are not a well-formed ModelProto (names <paramref name="path"/>).</exception>
    public static SentencePieceProto Parse(byte[] data, string path)
    {
        var m = new SentencePieceProto();
        var r = new Reader(data, 0, data.Length, path, "ModelProto");
        while (r.Next(out int field, out int wire))
        {
            switch (field)
            {
                case 1 when wire == 2: m.Pieces.Add(ReadPiece(r.Sub("pieces"), m.Pieces.Count)); break;
                case 2 when wire == 2: m.ReadTrainerSpec(r.Sub("trainer_spec")); break;
                case 3 when wire == 2: m.ReadNormalizerSpec(r.Sub("normalizer_spec")); break;
                default: r.Skip(wire); break;
            }
        }
        if (m.Pieces.Count == 0) throw new InvalidDataException($"{path}: SentencePiece model has no pieces (ModelProto field 1)");
        return m;
    }

    private static Piece ReadPiece(Reader r, int index)
    {
        string? text = null;
        float score = 0;
        var type = PieceType.Normal;
        while (r.Next(out int field, out int wire))
        {
            switch (field)
            {
                case 1 when wire == 2: text = r.String(); break;
                case 2 when wire == 5: score = r.Float(); break;
                case 3 when wire == 0: type = (PieceType)r.Varint(); break;
                default: r.Skip(wire); break;
            }
        }
        if (text is null) throw r.Error($"pieces[{index}] has no 'piece' string (field 1)");
        if (type is < PieceType.Normal or > PieceType.Byte) throw r.Error($"pieces[{index}] '{text}' has unknown type {(int)type} (expected 1..6)");
        return new Piece(text, score, type);
    }

    private void ReadTrainerSpec(Reader r)
    {
        while (r.Next(out int field, out int wire))
        {
            switch (field)
            {
                case 3 when wire == 0: Model = (ModelType)r.Varint(); break;
                case 24 when wire == 0: TreatWhitespaceAsSuffix = r.Varint() != 0; break;
                case 35 when wire == 0: ByteFallback = r.Varint() != 0; break;
                case 40 when wire == 0: UnkId = (int)r.Varint(); break;
                case 41 when wire == 0: BosId = (int)r.Varint(); break;
                case 42 when wire == 0: EosId = (int)r.Varint(); break;
                case 43 when wire == 0: PadId = (int)r.Varint(); break;
                default: r.Skip(wire); break;
            }
        }
    }

    private void ReadNormalizerSpec(Reader r)
    {
        while (r.Next(out int field, out int wire))
        {
            switch (field)
            {
                case 1 when wire == 2: NormalizerName = r.String(); break;
                case 2 when wire == 2: PrecompiledCharsmapLength = r.Bytes().Length; break;
                case 3 when wire == 0: AddDummyPrefix = r.Varint() != 0; break;
                case 4 when wire == 0: RemoveExtraWhitespaces = r.Varint() != 0; break;
                case 5 when wire == 0: EscapeWhitespaces = r.Varint() != 0; break;
                default: r.Skip(wire); break;
            }
        }
    }

    /// <summary>Protobuf wire format over a byte range; errors name the file and the message being read.</summary>
    private sealed class Reader(byte[] data, int pos, int end, string path, string message)
    {
        private int _pos = pos;

        public InvalidDataException Error(string what) => new($"{path}: SentencePiece {message}: {what} (at byte {_pos})");

        public bool Next(out int field, out int wire)
        {
            field = wire = 0;
            if (_pos >= end) return false;
            ulong key = Varint();
            field = (int)(key >> 3);
            wire = (int)(key & 7);
            if (field == 0) throw Error("field number 0");
            return true;
        }

        public ulong Varint()
        {
            ulong v = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                if (_pos >= end) throw Error("truncated varint");
                byte b = data[_pos++];
                v |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return v;
            }
            throw Error("varint longer than 10 bytes");
        }

        public float Float()
        {
            if (_pos + 4 > end) throw Error("truncated float");
            float f = BinaryPrimitives.ReadSingleLittleEndian(data.AsSpan(_pos, 4));
            _pos += 4;
            return f;
        }

        public ReadOnlySpan<byte> Bytes()
        {
            ulong len = Varint();
            if (len > (ulong)(end - _pos)) throw Error($"length {len} runs past the end of the message");
            var span = data.AsSpan(_pos, (int)len);
            _pos += (int)len;
            return span;
        }

        public string String()
        {
            try { return new UTF8Encoding(false, true).GetString(Bytes()); }
            catch (DecoderFallbackException) { throw Error("string field is not valid UTF-8"); }
        }

        public Reader Sub(string name)
        {
            ulong len = Varint();
            if (len > (ulong)(end - _pos)) throw Error($"{name}: length {len} runs past the end of the message");
            var sub = new Reader(data, _pos, _pos + (int)len, path, name);
            _pos += (int)len;
            return sub;
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: Advance(8); break;
                case 2: Bytes(); break;
                case 5: Advance(4); break;
                default: throw Error($"unsupported wire type {wire}");
            }
        }

        private void Advance(int n)
        {
            if (_pos + n > end) throw Error("truncated fixed-size field");
            _pos += n;
        }
    }
}
