using EdgeTune.Formats;
using EdgeTune.Tensors;

namespace EdgeTune.Tests.Formats;

public sealed class GgufLlamaTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [SkippableFact]
    public void Stories260KToGgufAndBack()
    {
        using var ck = Llama2cCheckpoint.Open(TestAssets.Require("stories260K/stories260K.bin"));
        string path = _dir.File("stories260K.gguf");
        GgufLlama.Write(path, ck.Config, ck.Tensors.Select(t => new KeyValuePair<string, Tensor>(t.Name, ck.GetTensor(t.Name))), ck.RopeLayout,
            [new("tokenizer.ggml.bos_token_id", 1u), new("tokenizer.ggml.eos_token_id", 2u)]);

        using var g = GgufFile.Open(path);
        Assert.Equal("llama", g.Architecture);
        Assert.Equal(ck.Tensors.Count, g.Tensors.Count);
        Assert.Contains(g.TensorInfos, t => t.Name == "blk.4.ffn_down.weight" && t.Ne.SequenceEqual(new long[] { 172, 64 }));
        var cfg = GgufLlama.ToHfConfig(g);
        Assert.Equal((ck.Config with { Architectures = [], TorchDtype = null, RmsNormEps = cfg.RmsNormEps }).ToJson(), cfg.ToJson());
        Assert.Equal(1e-5, cfg.RmsNormEps, 9);

        // Same layout back: identical bytes. Half-split: the q/k rows permuted, everything else identical.
        foreach (var info in ck.Tensors)
        {
            using var same = GgufLlama.GetHfTensor(g, cfg, info.Name, RopeStyle.Interleaved);
            Assert.Equal(ck.GetTensor(info.Name).ToFloatArray(), same.ToFloatArray());
            using var hf = GgufLlama.GetHfTensor(g, cfg, info.Name, RopeStyle.HalfSplit);
            bool rope = GgufTensorNames.IsRopeProjection(info.Name, out bool isKey);
            using var expected = rope ? RopePermutation.GgufToHf(ck.GetTensor(info.Name), isKey ? 4 : 8) : ck.GetTensor(info.Name).Clone();
            Assert.Equal(expected.ToFloatArray(), hf.ToFloatArray());
            Assert.Equal(info.Name, hf.Name);
        }
    }

    [Theory]
    [InlineData("llama", true)]
    [InlineData("qwen2", false)] // llama.cpp runs qwen2 with NEOX rope: q/k stay half-split in GGUF
    public void HalfSplitSourceIsPermutedOnWriteAndBackOnRead(string arch, bool permuted)
    {
        var cfg = HfConfig.Parse($$"""
            {"model_type":"{{arch}}","hidden_size":32,"intermediate_size":64,"num_hidden_layers":1,"attention_bias":true,
             "num_attention_heads":4,"num_key_value_heads":2,"vocab_size":10,"tie_word_embeddings":true}
            """);
        var rng = new Rng(5);
        Tensor Make(string name, params int[] shape)
        {
            var t = Tensor.Zeros(DType.F32, shape, name);
            rng.FillUniform(t.Span<float>(), -1, 1);
            return t;
        }
        Tensor[] ts =
        [
            Make("model.embed_tokens.weight", 10, 32),
            Make("model.layers.0.self_attn.q_proj.weight", 32, 32),
            Make("model.layers.0.self_attn.q_proj.bias", 32),
            Make("model.layers.0.self_attn.k_proj.weight", 16, 32),
            Make("model.layers.0.self_attn.k_proj.bias", 16),
            Make("model.norm.weight", 32),
        ];
        try
        {
            string path = _dir.File("q.gguf");
            GgufLlama.Write(path, cfg, ts.Select(t => new KeyValuePair<string, Tensor>(t.Name, t)), RopeStyle.HalfSplit);
            using var g = GgufFile.Open(path);
            var back = GgufLlama.ToHfConfig(g);
            Assert.True(back.TieWordEmbeddings);
            Assert.True(back.AttentionBias);
            Assert.Equal(2, back.NumKeyValueHeads);
            Assert.Equal(permuted ? RopeStyle.Interleaved : RopeStyle.HalfSplit, g.RopeLayout);
            using var qGguf = g.GetTensor("blk.0.attn_q.weight").Clone();
            using var kbGguf = g.GetTensor("blk.0.attn_k.bias").Clone();
            using var qExpected = permuted ? RopePermutation.HfToGguf(ts[1], 4) : ts[1].Clone();
            using var kbExpected = permuted ? RopePermutation.HfToGguf(ts[4], 2) : ts[4].Clone();
            Assert.Equal(kbExpected.ToFloatArray(), kbGguf.ToFloatArray());
            Assert.Equal(qExpected.ToFloatArray(), qGguf.ToFloatArray());
            foreach (var t in ts)
            {
                using var r = GgufLlama.GetHfTensor(g, back, t.Name, RopeStyle.HalfSplit);
                Assert.Equal(t.ToFloatArray(), r.ToFloatArray());
            }
            using var bad = Tensor.Zeros(DType.F32, [2], "model.layers.0.self_attn.rotary_emb.inv_freq");
            Assert.Contains("no llama.cpp name", Assert.Throws<CheckpointFormatException>(() =>
                GgufLlama.Write(_dir.File("bad.gguf"), cfg, [new(bad.Name, bad)], RopeStyle.HalfSplit)).Message);
        }
        finally
        {
            foreach (var t in ts) t.Dispose();
        }
    }

    [SkippableFact]
    public void CheckpointReaderOpensEachKindByLooking()
    {
        string bin = TestAssets.Require("stories260K/stories260K.bin");
        using (var l = CheckpointReader.Open(bin))
        {
            Assert.IsType<Llama2cCheckpoint>(l);
            Assert.Equal(64, CheckpointReader.ConfigFor(l).HiddenSize);
        }
        using var t = Tensor.From<float>([1, 2], [2], "w");
        string st = _dir.File("model.safetensors");
        SafeTensorsWriter.Write(st, [t]);
        File.WriteAllText(_dir.File("config.json"), """{"model_type":"llama","hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"vocab_size":4}""");
        using (var s = CheckpointReader.Open(st))
        {
            Assert.IsType<SafeTensorsCheckpoint>(s);
            Assert.Equal(RopeStyle.HalfSplit, s.RopeLayout);
            Assert.Equal(8, CheckpointReader.ConfigFor(s).HiddenSize);
        }
        using (var d = CheckpointReader.Open(_dir.Path)) Assert.True(d.Contains("w"));
        string gg = _dir.File("m.gguf");
        GgufWriter.Write(gg, [new("general.architecture", "llama")], [t]);
        using (var g = CheckpointReader.Open(gg)) Assert.IsType<GgufFile>(g);
    }
}
