using EdgeTune.Tensors;

namespace EdgeTune.Models.Bert;

/// <summary>
/// A BERT encoder for inference (post-norm blocks: self-attention with a padding mask, residual + LayerNorm,
/// erf-GELU feed-forward, residual + LayerNorm), built on the library's kernels: <see cref="Gemm"/> for every
/// projection and the attention products, <see cref="LayerNorm"/>, <see cref="Softmax"/> and
/// <see cref="Elementwise"/>. <see cref="SentenceEmbeddings"/> adds the sentence-transformers head: mean pooling
/// over the attention mask, then L2 normalisation.
/// </summary>
/// <remarks>
/// Parameters use the transformers names without the <c>bert.</c> prefix (<c>embeddings.word_embeddings.weight</c>,
/// <c>encoder.layer.{i}.attention.self.query.weight</c>, …); linear weights are [out, in] like PyTorch's.
/// </remarks>
public sealed class BertEncoder
{
    private readonly float[] _word, _position, _tokenType, _embLnW, _embLnB;
    private readonly Layer[] _layers;

    private sealed record Linear(float[] W, float[] B, int In, int Out);

    private sealed record Layer(Linear Q, Linear K, Linear V, Linear O, float[] AttnLnW, float[] AttnLnB,
        Linear Up, Linear Down, float[] OutLnW, float[] OutLnB);

    public BertConfig Config { get; }

    /// <summary>Builds the encoder from named parameters (see remarks); shapes are checked against <paramref name="config"/>.</summary>
    /// <exception cref="ArgumentException">A parameter is missing or has the wrong size.</exception>
    public BertEncoder(BertConfig config, IReadOnlyDictionary<string, float[]> parameters)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(parameters);
        config.Validate();
        Config = config;
        int h = config.HiddenSize, f = config.IntermediateSize;

        float[] Get(string name, long size)
        {
            if (!parameters.TryGetValue(name, out var p)) throw new ArgumentException($"BERT parameter '{name}' is missing");
            if (p.Length != size) throw new ArgumentException($"BERT parameter '{name}' has {p.Length} values; the config needs {size}");
            return p;
        }
        Linear Lin(string prefix, int i, int o) => new(Get(prefix + ".weight", (long)i * o), Get(prefix + ".bias", o), i, o);

        _word = Get("embeddings.word_embeddings.weight", (long)config.VocabSize * h);
        _position = Get("embeddings.position_embeddings.weight", (long)config.MaxPositions * h);
        _tokenType = Get("embeddings.token_type_embeddings.weight", (long)config.TypeVocabSize * h);
        _embLnW = Get("embeddings.LayerNorm.weight", h);
        _embLnB = Get("embeddings.LayerNorm.bias", h);
        _layers = new Layer[config.Layers];
        for (int l = 0; l < config.Layers; l++)
        {
            string p = $"encoder.layer.{l}.";
            _layers[l] = new Layer(
                Lin(p + "attention.self.query", h, h), Lin(p + "attention.self.key", h, h), Lin(p + "attention.self.value", h, h),
                Lin(p + "attention.output.dense", h, h),
                Get(p + "attention.output.LayerNorm.weight", h), Get(p + "attention.output.LayerNorm.bias", h),
                Lin(p + "intermediate.dense", h, f), Lin(p + "output.dense", f, h),
                Get(p + "output.LayerNorm.weight", h), Get(p + "output.LayerNorm.bias", h));
        }
    }

    /// <summary>The last hidden state, row-major [Batch, Length, HiddenSize] (padded positions included).</summary>
    /// <exception cref="ArgumentException">The batch is malformed, too long, or holds an id outside the vocabulary or token types.</exception>
    public float[] LastHiddenState(BertBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        batch.Validate();
        var c = Config;
        if (batch.Length > c.MaxPositions) throw new ArgumentException($"sequence length {batch.Length} exceeds the {c.MaxPositions} positions of the model");
        int rows = batch.Batch * batch.Length, h = c.HiddenSize;

        var x = new float[rows * h];
        for (int r = 0; r < rows; r++)
        {
            int id = batch.InputIds[r], type = batch.TokenTypeIds[r], pos = r % batch.Length;
            if ((uint)id >= (uint)c.VocabSize) throw new ArgumentException($"token id {id} at row {r} is outside the vocabulary of {c.VocabSize}");
            if ((uint)type >= (uint)c.TypeVocabSize) throw new ArgumentException($"token type {type} at row {r} is outside the {c.TypeVocabSize} types");
            var dst = x.AsSpan(r * h, h);
            Elementwise.Add(_word.AsSpan(id * h, h), _position.AsSpan(pos * h, h), dst);
            Elementwise.Add(dst, _tokenType.AsSpan(type * h, h), dst);
        }
        var mean = new float[rows];
        var rstd = new float[rows];
        LayerNorm.Forward(x, _embLnW, _embLnB, x, mean, rstd, rows, h, c.LayerNormEps);

        var q = new float[rows * h];
        var k = new float[rows * h];
        var v = new float[rows * h];
        var ctx = new float[rows * h];
        var attn = new float[rows * h];
        var up = new float[rows * c.IntermediateSize];
        var scratch = new AttentionScratch(batch.Length, c.HeadDim);
        foreach (var layer in _layers)
        {
            Project(layer.Q, x, q, rows);
            Project(layer.K, x, k, rows);
            Project(layer.V, x, v, rows);
            SelfAttention(q, k, v, ctx, batch, c.Heads, c.HeadDim, scratch);
            Project(layer.O, ctx, attn, rows);
            Elementwise.Add(attn, x, attn);
            LayerNorm.Forward(attn, layer.AttnLnW, layer.AttnLnB, attn, mean, rstd, rows, h, c.LayerNormEps);

            Project(layer.Up, attn, up, rows);
            Elementwise.Gelu(up, up, GeluApproximation.Exact);
            Project(layer.Down, up, x, rows);
            Elementwise.Add(x, attn, x);
            LayerNorm.Forward(x, layer.OutLnW, layer.OutLnB, x, mean, rstd, rows, h, c.LayerNormEps);
        }
        return x;
    }

    /// <summary>
    /// sentence-transformers embeddings: the last hidden state averaged over the attended tokens of each row,
    /// then divided by its L2 norm (floored at 1e-12, as torch's normalize). Returns one [HiddenSize] vector per row.
    /// </summary>
    public float[][] SentenceEmbeddings(BertBatch batch)
    {
        float[] hidden = LastHiddenState(batch);
        return MeanPoolNormalize(hidden, batch.AttentionMask, batch.Batch, batch.Length, Config.HiddenSize);
    }

    /// <summary>Mean pooling of hidden [B, T, H] over mask [B, T], then L2 normalisation of each row.</summary>
    public static float[][] MeanPoolNormalize(ReadOnlySpan<float> hidden, ReadOnlySpan<int> mask, int batch, int length, int hiddenSize)
    {
        if (hidden.Length != batch * length * hiddenSize || mask.Length != batch * length)
            throw new ArgumentException($"hidden {hidden.Length} / mask {mask.Length} do not match [{batch}, {length}, {hiddenSize}]");
        var result = new float[batch][];
        for (int b = 0; b < batch; b++)
        {
            var sum = new float[hiddenSize];
            int count = 0;
            for (int t = 0; t < length; t++)
            {
                if (mask[b * length + t] == 0) continue;
                Elementwise.Add(sum, hidden.Slice((b * length + t) * hiddenSize, hiddenSize), sum);
                count++;
            }
            // sentence-transformers clamps the token count at 1e-9 before dividing.
            Elementwise.Scale(sum, 1f / Math.Max(count, 1e-9f), sum);
            double sq = 0;
            foreach (float s in sum) sq += (double)s * s;
            float inv = 1f / MathF.Max((float)Math.Sqrt(sq), 1e-12f);
            Elementwise.Scale(sum, inv, sum);
            result[b] = sum;
        }
        return result;
    }

    private static void Project(Linear lin, ReadOnlySpan<float> input, Span<float> output, int rows)
    {
        Gemm.ABt<float>(input, lin.W, output, rows, lin.In, lin.Out);
        Elementwise.AddRowBias(output, lin.B, rows, lin.Out);
    }

    private sealed class AttentionScratch(int length, int headDim)
    {
        public readonly float[] Q = new float[length * headDim];
        public readonly float[] K = new float[length * headDim];
        public readonly float[] V = new float[length * headDim];
        public readonly float[] O = new float[length * headDim];
        public readonly float[] Scores = new float[length * length];
    }

    /// <summary>
    /// Bidirectional scaled-dot-product attention per (sequence, head); keys where the mask is 0 get −∞ before the
    /// softmax, so padding never receives weight. q, k, v, ctx: [B·T, Heads·HeadDim].
    /// </summary>
    private static void SelfAttention(float[] q, float[] k, float[] v, float[] ctx, BertBatch batch, int heads, int headDim, AttentionScratch s)
    {
        int t = batch.Length, hidden = heads * headDim;
        float scale = 1f / MathF.Sqrt(headDim);
        for (int b = 0; b < batch.Batch; b++)
        {
            var mask = batch.AttentionMask.AsSpan(b * t, t);
            for (int head = 0; head < heads; head++)
            {
                for (int i = 0; i < t; i++)
                {
                    int src = (b * t + i) * hidden + head * headDim;
                    q.AsSpan(src, headDim).CopyTo(s.Q.AsSpan(i * headDim, headDim));
                    k.AsSpan(src, headDim).CopyTo(s.K.AsSpan(i * headDim, headDim));
                    v.AsSpan(src, headDim).CopyTo(s.V.AsSpan(i * headDim, headDim));
                }
                Gemm.ABt<float>(s.Q, s.K, s.Scores, t, headDim, t);
                Elementwise.Scale(s.Scores, scale, s.Scores);
                for (int i = 0; i < t; i++)
                {
                    var row = s.Scores.AsSpan(i * t, t);
                    for (int j = 0; j < t; j++)
                        if (mask[j] == 0) row[j] = float.NegativeInfinity;
                }
                Softmax.Forward(s.Scores, s.Scores, t, t);
                Gemm.AB<float>(s.Scores, s.V, s.O, t, t, headDim);
                for (int i = 0; i < t; i++)
                    s.O.AsSpan(i * headDim, headDim).CopyTo(ctx.AsSpan((b * t + i) * hidden + head * headDim, headDim));
            }
        }
    }
}
