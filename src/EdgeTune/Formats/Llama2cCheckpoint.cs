using System.Buffers.Binary;
using EdgeTune.Tensors;

namespace EdgeTune.Formats;

/// <summary>The 7 int32 of a legacy llama2.c checkpoint header.</summary>
/// <param name="VocabSize">Signed as stored: negative means the classifier is not shared with the embedding.</param>
public readonly record struct Llama2cHeader(int Dim, int HiddenDim, int NLayers, int NHeads, int NKvHeads, int VocabSize, int SeqLen)
{
    public bool SharedClassifier => VocabSize > 0;
    public int Vocab => Math.Abs(VocabSize);
    public int HeadSize => Dim / NHeads;
    public int KvDim => Dim / NHeads * NKvHeads;
}

/// <summary>
/// A legacy (version 0) llama2.c checkpoint, memory-mapped: a 28-byte header of 7 little-endian
/// int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len), then float32 weights
/// grouped by kind across layers: token embedding [V, C], rms_att [L, C], wq [L, C, C], wk [L, KV, C],
/// wv [L, KV, C], wo [L, C, C], rms_ffn [L, C], w1 [L, F, C], w2 [L, C, F], w3 [L, F, C],
/// rms_final [C], the legacy freq_cis_real/imag tables [seq_len, head_size/2] (skipped), and, when
/// vocab_size is negative, an unshared classifier [V, C].
/// </summary>
/// <remarks>
/// Tensors are exposed per layer under Hugging Face Llama names (w1 → mlp.gate_proj, w2 → down_proj,
/// w3 → up_proj; <c>lm_head.weight</c> only when unshared) as read-only views. llama2.c's q/k rows
/// follow Meta's <see cref="RopeStyle.Interleaved"/> pairing. <see cref="Config"/> is the equivalent
/// HF config (llama, rms_norm_eps 1e-5, rope_theta 10000, max_position_embeddings = seq_len).
/// </remarks>
public sealed class Llama2cCheckpoint : ICheckpointReader
{
    public const int HeaderBytes = 28;
    private const uint ExportMagic = 0x616b3432; // "ak42": llama2.c's versioned export format

    private readonly TensorStorage _storage;
    private readonly Dictionary<string, (TensorInfo Info, long Offset)> _byName;
    private readonly List<TensorInfo> _tensors;

    private Llama2cCheckpoint(string path, TensorStorage storage, Llama2cHeader header, List<(TensorInfo, long)> layout)
    {
        Source = path;
        _storage = storage;
        Header = header;
        _tensors = layout.Select(x => x.Item1).ToList();
        _byName = layout.ToDictionary(x => x.Item1.Name, x => x, StringComparer.Ordinal);
        Config = new HfConfig
        {
            ModelType = "llama",
            Architectures = ["LlamaForCausalLM"],
            HiddenSize = header.Dim,
            IntermediateSize = header.HiddenDim,
            NumHiddenLayers = header.NLayers,
            NumAttentionHeads = header.NHeads,
            NumKeyValueHeads = header.NKvHeads,
            HeadDim = header.HeadSize,
            VocabSize = header.Vocab,
            RmsNormEps = 1e-5,
            RopeTheta = 10000.0,
            MaxPositionEmbeddings = header.SeqLen,
            TieWordEmbeddings = header.SharedClassifier,
            BosTokenId = 1,
            EosTokenIds = [2],
            TorchDtype = "float32",
        };
    }

    public string Source { get; }
    public Llama2cHeader Header { get; }

    /// <summary>The equivalent Hugging Face config.</summary>
    public HfConfig Config { get; }

    /// <summary>llama2.c rotates interleaved pairs (v[2i], v[2i+1]) of each head.</summary>
    public RopeStyle RopeLayout => RopeStyle.Interleaved;

    public IReadOnlyList<TensorInfo> Tensors => _tensors;

    /// <summary>Number of floats in the weights (the freq_cis tables excluded).</summary>
    public long ParameterCount => _tensors.Sum(t => t.ElementCount);

    public bool Contains(string name) => _byName.ContainsKey(name);

    public Tensor GetTensor(string name) =>
        _byName.TryGetValue(name, out var e)
            ? Tensor.View(_storage, e.Offset, DType.F32, e.Info.Shape, name)
            : throw new KeyNotFoundException($"{Source}: no tensor named '{name}' ({_tensors.Count} tensors in the checkpoint)");

    public void Dispose() => _storage.Dispose();

    /// <summary>File size a header implies, in bytes.</summary>
    public static long ExpectedFileSize(Llama2cHeader h)
    {
        checked
        {
            long c = h.Dim, l = h.NLayers, f = h.HiddenDim, kv = h.KvDim, v = h.Vocab;
            long floats = v * c + l * c + l * c * c + 2 * l * kv * c + l * c * c + l * c + 3 * l * f * c + c
                + 2L * h.SeqLen * (h.HeadSize / 2) + (h.SharedClassifier ? 0 : v * c);
            return HeaderBytes + 4 * floats;
        }
    }

    /// <summary>Maps and validates a legacy llama2.c checkpoint.</summary>
    public static unsafe Llama2cCheckpoint Open(string path)
    {
        var storage = TensorStorage.MapFile(path);
        try
        {
            long size = storage.ByteLength;
            if (size < HeaderBytes)
                throw new CheckpointFormatException(path, $"truncated: {size} bytes, a llama2.c checkpoint starts with a {HeaderBytes}-byte header");
            var hb = new ReadOnlySpan<byte>(storage.Pointer, HeaderBytes);
            if (BinaryPrimitives.ReadUInt32LittleEndian(hb) == ExportMagic)
                throw new CheckpointFormatException(path, $"llama2.c export format version {BinaryPrimitives.ReadInt32LittleEndian(hb[4..])} ('ak42' magic) is not supported; only the legacy version-0 layout is");
            var hi = new int[7];
            for (int k = 0; k < 7; k++) hi[k] = BinaryPrimitives.ReadInt32LittleEndian(hb[(4 * k)..]);
            var h = new Llama2cHeader(hi[0], hi[1], hi[2], hi[3], hi[4], hi[5], hi[6]);
            Validate(path, h);

            long expected;
            try { expected = ExpectedFileSize(h); }
            catch (OverflowException) { throw new CheckpointFormatException(path, $"header {h} describes an impossibly large model"); }
            if (size < expected)
                throw new CheckpointFormatException(path, $"truncated: the header {Describe(h)} needs {expected} bytes, the file has {size}");
            if (size > expected)
                throw new CheckpointFormatException(path, $"the header {Describe(h)} needs {expected} bytes but the file has {size}; not a legacy llama2.c checkpoint?");

            return new Llama2cCheckpoint(path, storage, h, Layout(h));
        }
        catch
        {
            storage.Dispose();
            throw;
        }
    }

    private static string Describe(Llama2cHeader h) =>
        $"(dim {h.Dim}, hidden_dim {h.HiddenDim}, n_layers {h.NLayers}, n_heads {h.NHeads}, n_kv_heads {h.NKvHeads}, vocab_size {h.VocabSize}, seq_len {h.SeqLen})";

    private static void Validate(string path, Llama2cHeader h)
    {
        void Positive(string field, int v)
        {
            if (v <= 0) throw new CheckpointFormatException(path, $"header field '{field}' = {v} must be positive {Describe(h)}", field);
        }
        Positive("dim", h.Dim);
        Positive("hidden_dim", h.HiddenDim);
        Positive("n_layers", h.NLayers);
        Positive("n_heads", h.NHeads);
        Positive("n_kv_heads", h.NKvHeads);
        Positive("seq_len", h.SeqLen);
        if (h.VocabSize == 0 || h.VocabSize == int.MinValue)
            throw new CheckpointFormatException(path, $"header field 'vocab_size' = {h.VocabSize} is invalid {Describe(h)}", "vocab_size");
        if (h.Dim % h.NHeads != 0 || h.HeadSize % 2 != 0)
            throw new CheckpointFormatException(path, $"dim {h.Dim} does not split into {h.NHeads} heads of an even size", "n_heads");
        if (h.NHeads % h.NKvHeads != 0)
            throw new CheckpointFormatException(path, $"n_kv_heads {h.NKvHeads} does not divide n_heads {h.NHeads}", "n_kv_heads");
    }

    private static List<(TensorInfo, long)> Layout(Llama2cHeader h)
    {
        int c = h.Dim, f = h.HiddenDim, kv = h.KvDim, v = h.Vocab, layers = h.NLayers;
        long pos = HeaderBytes;
        long Take(long floats) { long at = pos; pos += 4 * floats; return at; }

        long embed = Take((long)v * c);
        long rmsAtt = Take((long)layers * c);
        long wq = Take((long)layers * c * c);
        long wk = Take((long)layers * kv * c);
        long wv = Take((long)layers * kv * c);
        long wo = Take((long)layers * c * c);
        long rmsFfn = Take((long)layers * c);
        long w1 = Take((long)layers * f * c);
        long w2 = Take((long)layers * c * f);
        long w3 = Take((long)layers * f * c);
        long rmsFinal = Take(c);
        Take(2L * h.SeqLen * (h.HeadSize / 2)); // freq_cis_real, freq_cis_imag: unused
        long wcls = h.SharedClassifier ? -1 : Take((long)v * c);

        var list = new List<(TensorInfo, long)>();
        void Add(string name, long offset, params int[] shape) => list.Add((new TensorInfo(name, DType.F32, shape), offset));
        Add("model.embed_tokens.weight", embed, v, c);
        for (int i = 0; i < layers; i++)
        {
            string p = $"model.layers.{i}.";
            Add(p + "input_layernorm.weight", rmsAtt + 4L * i * c, c);
            Add(p + "self_attn.q_proj.weight", wq + 4L * i * c * c, c, c);
            Add(p + "self_attn.k_proj.weight", wk + 4L * i * kv * c, kv, c);
            Add(p + "self_attn.v_proj.weight", wv + 4L * i * kv * c, kv, c);
            Add(p + "self_attn.o_proj.weight", wo + 4L * i * c * c, c, c);
            Add(p + "post_attention_layernorm.weight", rmsFfn + 4L * i * c, c);
            Add(p + "mlp.gate_proj.weight", w1 + 4L * i * f * c, f, c);
            Add(p + "mlp.down_proj.weight", w2 + 4L * i * c * f, c, f);
            Add(p + "mlp.up_proj.weight", w3 + 4L * i * f * c, f, c);
        }
        Add("model.norm.weight", rmsFinal, c);
        if (wcls >= 0) Add("lm_head.weight", wcls, v, c);
        return list;
    }
}
