using EdgeTune.Nn.Quantized;
using EdgeTune.Tensors.Quantized;
using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using EdgeTune.Tensors;

namespace EdgeTune.Compression.Distillation;

/// <summary>
/// A file of the teacher's top-k predictions for a fixed set of training sequences, written once and
/// read back during training, so the teacher need not run (or even be present) while the student learns.
/// Entries are keyed by the XxHash64 of a sequence's token ids, so the trainer's shuffled batches find
/// theirs; a batch row with no entry (data or sequence length changed) is a clear error.
/// </summary>
/// <remarks>
/// Layout (little-endian): magic "ETTC", format version u32 (1), vocab u32, k u32, sequence length T u32,
/// entry count u32; then per entry: key u64, ids i32[T·k], log-probabilities f32[T·k] (at temperature 1,
/// descending per position); then XxHash64 of every preceding byte, u64. Opening checks the magic, the
/// version, the size implied by the header and the checksum, and names the file and what is wrong.
/// </remarks>
public sealed class TeacherCache : IDistillationTeacher
{
    /// <summary>The format version this code writes and reads.</summary>
    public const uint FormatVersion = 1;
    private static ReadOnlySpan<byte> Magic => "ETTC"u8;
    private const int HeaderBytes = 24;

    private readonly Dictionary<ulong, int> _index;
    private readonly int[] _ids;
    private readonly float[] _logProbs;

    private TeacherCache(string path, int vocab, int k, int seqLen, Dictionary<ulong, int> index, int[] ids, float[] logProbs)
    {
        Path = path;
        VocabSize = vocab;
        K = k;
        SeqLen = seqLen;
        _index = index;
        _ids = ids;
        _logProbs = logProbs;
    }

    public string Path { get; }
    public int VocabSize { get; }
    /// <summary>Ids kept per position.</summary>
    public int K { get; }
    /// <summary>Length of every cached sequence.</summary>
    public int SeqLen { get; }
    /// <summary>Distinct sequences cached.</summary>
    public int Count => _index.Count;

    /// <summary>The key of one sequence: XxHash64 of its token ids (little-endian int32).</summary>
    public static ulong KeyOf(ReadOnlySpan<int> tokens)
    {
        if (BitConverter.IsLittleEndian) return XxHash64.HashToUInt64(MemoryMarshal.AsBytes(tokens));
        var copy = tokens.ToArray();
        for (int i = 0; i < copy.Length; i++) copy[i] = BinaryPrimitives.ReverseEndianness(copy[i]);
        return XxHash64.HashToUInt64(MemoryMarshal.AsBytes(copy.AsSpan()));
    }

    /// <summary>
    /// Runs <paramref name="teacher"/> over <paramref name="sequences"/> (each of <paramref name="seqLen"/> ids;
    /// duplicates are stored once) and writes the top-<paramref name="k"/> cache to <paramref name="path"/>
    /// (through a temporary file, so a crash leaves no half-written cache). Returns the number of entries.
    /// </summary>
    public static int Build(ModelTeacher teacher, IEnumerable<int[]> sequences, int seqLen, int k, string path, int batch = 8) =>
        Build(teacher, sequences, seqLen, k, path, Security.RunFiles.Plain, batch);

    /// <summary>As <see cref="Build(ModelTeacher, IEnumerable{int[]}, int, int, string, int)"/>, written through
    /// <paramref name="files"/> (encrypted in an encrypted run). The file is written front to back: the distinct
    /// sequences are counted first, the checksum is accumulated as the bytes go out.</summary>
    public static int Build(ModelTeacher teacher, IEnumerable<int[]> sequences, int seqLen, int k, string path, Security.RunFiles files, int batch = 8)
    {
        ArgumentNullException.ThrowIfNull(teacher);
        ArgumentNullException.ThrowIfNull(sequences);
        ArgumentNullException.ThrowIfNull(files);
        int vocab = teacher.VocabSize;
        if (k < 1 || k > vocab) throw new ArgumentOutOfRangeException(nameof(k), k, $"top-k must lie in [1, {vocab}]");
        if (seqLen < 1) throw new ArgumentOutOfRangeException(nameof(seqLen), seqLen, "sequence length must be >= 1");
        batch = Math.Max(1, batch);
        var seen = new HashSet<ulong>();
        var distinct = new List<int[]>();
        foreach (var s in sequences)
        {
            if (s.Length != seqLen) throw new ArgumentException($"TeacherCache.Build: a sequence has {s.Length} ids; expected {seqLen}");
            if (seen.Add(KeyOf(s))) distinct.Add(s);
        }
        files.Write(path, file =>
        {
            var hash = new XxHash64();
            void Write(ReadOnlySpan<byte> bytes)
            {
                file.Write(bytes);
                hash.Append(bytes);
            }
            var header = new byte[HeaderBytes];
            Magic.CopyTo(header);
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(4), FormatVersion);
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), (uint)vocab);
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(12), (uint)k);
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(16), (uint)seqLen);
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(20), (uint)distinct.Count);
            Write(header);
            Span<byte> key = stackalloc byte[8];
            for (int start = 0; start < distinct.Count; start += batch)
            {
                int n = Math.Min(batch, distinct.Count - start);
                var tokens = new int[n * seqLen];
                for (int i = 0; i < n; i++) distinct[start + i].CopyTo(tokens, i * seqLen);
                var logits = teacher.Logits(tokens, null, n, seqLen);
                var top = TeacherTargets.TopKOf(logits, n * seqLen, vocab, k);
                for (int i = 0; i < n; i++)
                {
                    BinaryPrimitives.WriteUInt64LittleEndian(key, KeyOf(distinct[start + i]));
                    Write(key);
                    Write(Bytes<int>(top.Ids!.AsSpan(i * seqLen * k, seqLen * k)));
                    Write(Bytes<float>(top.Values.AsSpan(i * seqLen * k, seqLen * k)));
                }
            }
            Span<byte> sum = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(sum, hash.GetCurrentHashAsUInt64());
            file.Write(sum);
        });
        return distinct.Count;
    }

    /// <summary>Reads and verifies a cache file.</summary>
    /// <exception cref="InvalidDataException">not a teacher cache, another version, truncated or corrupt (names the file).</exception>
    public static TeacherCache Open(string path) => Open(path, Security.RunFiles.Plain);

    /// <summary>As <see cref="Open(string)"/>, reading through <paramref name="files"/> (decrypted in an encrypted run).</summary>
    public static TeacherCache Open(string path, Security.RunFiles files)
    {
        ArgumentNullException.ThrowIfNull(files);
        if (!File.Exists(path)) throw new FileNotFoundException($"teacher cache '{path}' does not exist", path);
        byte[] data = files.ReadAllBytes(path);
        if (data.Length < HeaderBytes + 8 || !data.AsSpan(0, 4).SequenceEqual(Magic))
            throw new InvalidDataException($"'{path}' is not an EdgeTune teacher cache (no 'ETTC' header)");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(4));
        if (version != FormatVersion)
            throw new InvalidDataException($"teacher cache '{path}' has format version {version}; this EdgeTune reads version {FormatVersion}");
        int vocab = (int)BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(8));
        int k = (int)BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(12));
        int seqLen = (int)BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(16));
        int count = (int)BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(20));
        if (vocab < 1 || k < 1 || k > vocab || seqLen < 1 || count < 0)
            throw new InvalidDataException($"teacher cache '{path}': header vocab {vocab}, k {k}, sequence length {seqLen}, entries {count} is invalid");
        long entry = 8 + 8L * seqLen * k;
        long expected = HeaderBytes + entry * count + 8;
        if (data.LongLength != expected)
            throw new InvalidDataException($"teacher cache '{path}' has {data.LongLength} bytes; its header implies {expected} (truncated or corrupt)");
        ulong stored = BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan(data.Length - 8));
        ulong actual = XxHash64.HashToUInt64(data.AsSpan(0, data.Length - 8));
        if (stored != actual)
            throw new InvalidDataException($"teacher cache '{path}': checksum mismatch (stored {stored:x16}, computed {actual:x16}); the file is corrupt");

        int per = seqLen * k;
        var ids = new int[(long)count * per];
        var lp = new float[(long)count * per];
        var index = new Dictionary<ulong, int>(count);
        long at = HeaderBytes;
        for (int e = 0; e < count; e++)
        {
            ulong key = BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan((int)at));
            at += 8;
            ReadInts(data.AsSpan((int)at, per * 4), ids.AsSpan(e * per, per));
            at += per * 4L;
            ReadFloats(data.AsSpan((int)at, per * 4), lp.AsSpan(e * per, per));
            at += per * 4L;
            if (!index.TryAdd(key, e)) throw new InvalidDataException($"teacher cache '{path}': entry {e} repeats a key");
        }
        foreach (int id in ids)
            if ((uint)id >= (uint)vocab) throw new InvalidDataException($"teacher cache '{path}': id {id} is outside the vocabulary [0, {vocab})");
        return new TeacherCache(path, vocab, k, seqLen, index, ids, lp);
    }

    public TeacherTargets Predict(int[] tokens, int[] targets, int batch, int time)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(targets);
        if (time != SeqLen)
            throw new ArgumentException($"teacher cache '{Path}' holds sequences of {SeqLen} positions; the batch has {time} (rebuild it with the training --seq-len)");
        if (tokens.Length != batch * time || targets.Length != tokens.Length)
            throw new ShapeException($"TeacherCache: tokens ({tokens.Length}) and targets ({targets.Length}) must hold B×T = {batch}×{time} ids");
        int per = time * K;
        var ids = new int[batch * per];
        var lp = new float[batch * per];
        for (int b = 0; b < batch; b++)
        {
            bool used = false;
            foreach (int t in targets.AsSpan(b * time, time)) used |= t != CrossEntropy.IgnoreIndex;
            if (!used) continue; // padding row: ids 0 with log-prob 0 are valid placeholders
            if (!_index.TryGetValue(KeyOf(tokens.AsSpan(b * time, time)), out int e))
                throw new KeyNotFoundException($"teacher cache '{Path}' has no entry for sequence {b} of this batch; it was built from other data or settings (rebuild it)");
            _ids.AsSpan(e * per, per).CopyTo(ids.AsSpan(b * per, per));
            _logProbs.AsSpan(e * per, per).CopyTo(lp.AsSpan(b * per, per));
        }
        return TeacherTargets.TopK(ids, lp, batch * time, K, VocabSize);
    }

    private static ReadOnlySpan<byte> Bytes<T>(ReadOnlySpan<T> values) where T : unmanaged
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("TeacherCache: big-endian machines are not supported");
        return MemoryMarshal.AsBytes(values);
    }

    private static void ReadInts(ReadOnlySpan<byte> src, Span<int> dst)
    {
        for (int i = 0; i < dst.Length; i++) dst[i] = BinaryPrimitives.ReadInt32LittleEndian(src.Slice(i * 4));
    }

    private static void ReadFloats(ReadOnlySpan<byte> src, Span<float> dst)
    {
        for (int i = 0; i < dst.Length; i++) dst[i] = BinaryPrimitives.ReadSingleLittleEndian(src.Slice(i * 4));
    }
}
