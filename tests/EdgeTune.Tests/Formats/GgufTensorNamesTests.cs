using EdgeTune.Formats;

namespace EdgeTune.Tests.Formats;

public class GgufTensorNamesTests
{
    public static TheoryData<string, string> Pairs => new()
    {
        { "token_embd.weight", "model.embed_tokens.weight" },
        { "output_norm.weight", "model.norm.weight" },
        { "output.weight", "lm_head.weight" },
        { "blk.0.attn_q.weight", "model.layers.0.self_attn.q_proj.weight" },
        { "blk.1.attn_k.weight", "model.layers.1.self_attn.k_proj.weight" },
        { "blk.2.attn_v.weight", "model.layers.2.self_attn.v_proj.weight" },
        { "blk.3.attn_output.weight", "model.layers.3.self_attn.o_proj.weight" },
        { "blk.4.ffn_gate.weight", "model.layers.4.mlp.gate_proj.weight" },
        { "blk.5.ffn_up.weight", "model.layers.5.mlp.up_proj.weight" },
        { "blk.21.ffn_down.weight", "model.layers.21.mlp.down_proj.weight" },
        { "blk.0.attn_norm.weight", "model.layers.0.input_layernorm.weight" },
        { "blk.0.ffn_norm.weight", "model.layers.0.post_attention_layernorm.weight" },
        { "blk.7.attn_q.bias", "model.layers.7.self_attn.q_proj.bias" },
    };

    [Theory]
    [MemberData(nameof(Pairs))]
    public void MapsBothWays(string gguf, string hf)
    {
        Assert.Equal(hf, GgufTensorNames.ToHf(gguf));
        Assert.Equal(gguf, GgufTensorNames.ToGguf(hf));
    }

    [Theory]
    [InlineData("blk.0.attn_qkv.weight")]
    [InlineData("rope_freqs.weight")]
    [InlineData("model.layers.0.self_attn.rotary_emb.inv_freq")]
    [InlineData("blk.x.attn_q.weight")]
    [InlineData("")]
    public void UnknownNamesMapToNull(string name)
    {
        Assert.Null(GgufTensorNames.ToHf(name));
        Assert.Null(GgufTensorNames.ToGguf(name));
    }

    [Fact]
    public void RecognisesRopeProjections()
    {
        Assert.True(GgufTensorNames.IsRopeProjection("blk.3.attn_k.weight", out bool k1) && k1);
        Assert.True(GgufTensorNames.IsRopeProjection("model.layers.3.self_attn.q_proj.weight", out bool k2) && !k2);
        Assert.False(GgufTensorNames.IsRopeProjection("blk.3.attn_v.weight", out _));
    }
}
