using System.Buffers.Binary;
using EdgeTune.Formats;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Formats;

public sealed class Llama2cCheckpointTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [SkippableFact]
    public void ReadsStories260K()
    {
        string path = TestAssets.Require("stories260K/stories260K.bin");
        Assert.Equal(1_056_540, new FileInfo(path).Length);
        using var ck = Llama2cCheckpoint.Open(path);
        Assert.Equal(new Llama2cHeader(64, 172, 5, 8, 4, 512, 512), ck.Header);
        Assert.Equal(1_056_540, Llama2cCheckpoint.ExpectedFileSize(ck.Header));
        Assert.Equal(260_032, ck.ParameterCount);
        Assert.Equal(RopeStyle.Interleaved, ck.RopeLayout);
        Assert.Equal(1 + 5 * 9 + 1, ck.Tensors.Count);
        Assert.False(ck.Contains("lm_head.weight"));

        var c = ck.Config;
        Assert.Equal("llama", c.ModelType);
        Assert.Equal(64, c.HiddenSize);
        Assert.Equal(172, c.IntermediateSize);
        Assert.Equal(5, c.NumHiddenLayers);
        Assert.Equal(8, c.NumAttentionHeads);
        Assert.Equal(4, c.NumKeyValueHeads);
        Assert.Equal(8, c.HeadDim);
        Assert.Equal(32, c.KeyValueDim);
        Assert.Equal(512, c.VocabSize);
        Assert.Equal(512, c.MaxPositionEmbeddings);
        Assert.True(c.TieWordEmbeddings);
        Assert.Equal(1e-5, c.RmsNormEps);
        Assert.Equal(10000.0, c.RopeTheta);
        c.Validate();

        Assert.Equal([512, 64], ck.GetTensor("model.embed_tokens.weight").Shape.ToArray());
        Assert.Equal([64, 64], ck.GetTensor("model.layers.4.self_attn.q_proj.weight").Shape.ToArray());
        Assert.Equal([32, 64], ck.GetTensor("model.layers.0.self_attn.k_proj.weight").Shape.ToArray());
        Assert.Equal([32, 64], ck.GetTensor("model.layers.2.self_attn.v_proj.weight").Shape.ToArray());
        Assert.Equal([172, 64], ck.GetTensor("model.layers.1.mlp.gate_proj.weight").Shape.ToArray());
        Assert.Equal([64, 172], ck.GetTensor("model.layers.1.mlp.down_proj.weight").Shape.ToArray());
        Assert.Equal([172, 64], ck.GetTensor("model.layers.1.mlp.up_proj.weight").Shape.ToArray());
        Assert.Equal([64], ck.GetTensor("model.norm.weight").Shape.ToArray());

        // Views read the file's bytes: the embedding starts right after the header, the final norm
        // sits just before the two 512×4 freq tables.
        byte[] raw = File.ReadAllBytes(path);
        Assert.Equal(BitConverter.ToSingle(raw, 28), ck.GetTensor("model.embed_tokens.weight").ReadOnlySpan<float>()[0]);
        int finalNorm = raw.Length - 4 * (2 * 512 * 4 + 64);
        Assert.Equal(BitConverter.ToSingle(raw, finalNorm), ck.GetTensor("model.norm.weight").ReadOnlySpan<float>()[0]);
        Assert.All(ck.GetTensor("model.norm.weight").ToFloatArray(), v => Assert.True(float.IsFinite(v) && v > 0));
    }

    /// <summary>A tiny synthetic checkpoint whose every float is its own index in the body.</summary>
    private string Synthetic(Llama2cHeader h, long? truncateTo = null, byte[]? header = null)
    {
        long size = Llama2cCheckpoint.ExpectedFileSize(h);
        var b = new byte[truncateTo ?? size];
        int[] hv = [h.Dim, h.HiddenDim, h.NLayers, h.NHeads, h.NKvHeads, h.VocabSize, h.SeqLen];
        for (int k = 0; k < 7 && 4 * k + 4 <= b.Length; k++) BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(4 * k), hv[k]);
        for (long i = 0; 28 + 4 * i + 4 <= b.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan((int)(28 + 4 * i)), i);
        header?.CopyTo(b, 0);
        string p = _dir.File($"m{Guid.NewGuid():N}.bin");
        File.WriteAllBytes(p, b);
        return p;
    }

    [Fact]
    public void UnsharedClassifierAndExactOffsets()
    {
        var h = new Llama2cHeader(Dim: 8, HiddenDim: 12, NLayers: 2, NHeads: 2, NKvHeads: 1, VocabSize: -10, SeqLen: 3);
        using var ck = Llama2cCheckpoint.Open(Synthetic(h));
        Assert.False(ck.Config.TieWordEmbeddings);
        Assert.Equal(10, ck.Config.VocabSize);
        float First(string n) => ck.GetTensor(n).ReadOnlySpan<float>()[0];
        int c = 8, f = 12, kv = 4, v = 10, L = 2;
        float embed = 0, rmsAtt = v * c, wq = rmsAtt + L * c, wk = wq + L * c * c, wv = wk + L * kv * c, wo = wv + L * kv * c,
            rmsFfn = wo + L * c * c, w1 = rmsFfn + L * c, w2 = w1 + L * f * c, w3 = w2 + L * c * f, fin = w3 + L * f * c,
            wcls = fin + c + 2 * 3 * 2;
        Assert.Equal(embed, First("model.embed_tokens.weight"));
        Assert.Equal(rmsAtt + c, First("model.layers.1.input_layernorm.weight"));
        Assert.Equal(wq + c * c, First("model.layers.1.self_attn.q_proj.weight"));
        Assert.Equal(wk + kv * c, First("model.layers.1.self_attn.k_proj.weight"));
        Assert.Equal(wv, First("model.layers.0.self_attn.v_proj.weight"));
        Assert.Equal(wo + c * c, First("model.layers.1.self_attn.o_proj.weight"));
        Assert.Equal(rmsFfn + c, First("model.layers.1.post_attention_layernorm.weight"));
        Assert.Equal(w1 + f * c, First("model.layers.1.mlp.gate_proj.weight"));
        Assert.Equal(w2 + c * f, First("model.layers.1.mlp.down_proj.weight"));
        Assert.Equal(w3, First("model.layers.0.mlp.up_proj.weight"));
        Assert.Equal(fin, First("model.norm.weight"));
        Assert.Equal(wcls, First("lm_head.weight"));
        Assert.Equal([10, 8], ck.GetTensor("lm_head.weight").Shape.ToArray());
        Assert.Equal(wcls + v * c - 1, ck.GetTensor("lm_head.weight").ReadOnlySpan<float>()[^1]);
    }

    [Fact]
    public void TruncatedAndMalformedFilesAreClearErrors()
    {
        var h = new Llama2cHeader(8, 12, 2, 2, 1, 10, 3);
        long full = Llama2cCheckpoint.ExpectedFileSize(h);
        var e1 = Assert.Throws<CheckpointFormatException>(() => Llama2cCheckpoint.Open(Synthetic(h, truncateTo: full - 4)));
        Assert.Contains("truncated", e1.Message);
        Assert.Contains($"needs {full} bytes", e1.Message);
        Assert.Contains("truncated", Assert.Throws<CheckpointFormatException>(() => Llama2cCheckpoint.Open(Synthetic(h, truncateTo: 20))).Message);
        Assert.Contains("not a legacy", Assert.Throws<CheckpointFormatException>(() =>
        {
            string p = Synthetic(h);
            File.AppendAllText(p, "xx");
            Llama2cCheckpoint.Open(p);
        }).Message);
        Assert.Contains("'n_layers'", Assert.Throws<CheckpointFormatException>(() => Llama2cCheckpoint.Open(Synthetic(h with { NLayers = 0 }, truncateTo: 100))).Message);
        Assert.Contains("n_kv_heads", Assert.Throws<CheckpointFormatException>(() => Llama2cCheckpoint.Open(Synthetic(h with { NKvHeads = 3 }, truncateTo: 100))).Message);
        Assert.Contains("impossibly large", Assert.Throws<CheckpointFormatException>(() => Llama2cCheckpoint.Open(Synthetic(h, truncateTo: 100,
            header: [.. BitConverter.GetBytes(1 << 30), .. BitConverter.GetBytes(int.MaxValue), .. BitConverter.GetBytes(int.MaxValue)]))).Message);
        Assert.Contains("ak42", Assert.Throws<CheckpointFormatException>(() => Llama2cCheckpoint.Open(Synthetic(h, truncateTo: 256, header: [0x32, 0x34, 0x6b, 0x61, 1, 0, 0, 0]))).Message);
    }
}
