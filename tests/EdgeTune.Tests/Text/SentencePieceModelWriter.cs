using System.Text;

namespace EdgeTune.Tests.Text;

/// <summary>Writes SentencePiece ModelProto files for tests (sentencepiece_model.proto field numbers).</summary>
internal static class SentencePieceModelWriter
{
    public const int Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, ByteType = 6;

    /// <summary>A BPE ModelProto: the pieces (text, score, type), trainer_spec ids, byte fallback and the identity
    /// normalizer's three flags.</summary>
    public static byte[] Bpe(IReadOnlyList<(string Piece, float Score, int Type)> pieces, bool byteFallback, int unkId, int bosId, int eosId, int padId,
        bool addDummyPrefix, bool removeExtraWhitespaces, bool escapeWhitespaces = true)
    {
        var model = new ProtoWriter();
        foreach (var (piece, score, type) in pieces)
            model.Message(1, p => p.String(1, piece).Float(2, score).Varint(3, type));
        model.Message(2, t => t
            .Varint(3, 2) // model_type BPE
            .Varint(4, pieces.Count)
            .Varint(35, byteFallback ? 1 : 0)
            .Varint(40, unkId).Varint(41, bosId).Varint(42, eosId).Varint(43, padId));
        model.Message(3, n => n
            .String(1, "identity")
            .Varint(3, addDummyPrefix ? 1 : 0)
            .Varint(4, removeExtraWhitespaces ? 1 : 0)
            .Varint(5, escapeWhitespaces ? 1 : 0));
        return model.ToArray();
    }

    /// <summary>A minimal protobuf writer for the SentencePiece ModelProto fields the test needs.</summary>
    internal sealed class ProtoWriter
    {
        private readonly MemoryStream _s = new();

        private void Raw(ulong v)
        {
            while (v >= 0x80) { _s.WriteByte((byte)(v | 0x80)); v >>= 7; }
            _s.WriteByte((byte)v);
        }

        private void Tag(int field, int wire) => Raw((ulong)(field << 3 | wire));

        public ProtoWriter Varint(int field, long value) { Tag(field, 0); Raw((ulong)value); return this; }

        public ProtoWriter Float(int field, float value)
        {
            Tag(field, 5);
            Span<byte> b = stackalloc byte[4];
            System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(b, value);
            _s.Write(b);
            return this;
        }

        public ProtoWriter Bytes(int field, byte[] value) { Tag(field, 2); Raw((ulong)value.Length); _s.Write(value); return this; }

        public ProtoWriter String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

        public ProtoWriter Message(int field, Action<ProtoWriter> body)
        {
            var inner = new ProtoWriter();
            body(inner);
            return Bytes(field, inner.ToArray());
        }

        public byte[] ToArray() => _s.ToArray();
    }
}
