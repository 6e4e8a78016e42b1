namespace EdgeTune.Tests;

/// <summary>Hugging Face tensor names of a Llama block, for tests that address single tensors (the model itself builds them in <c>LlamaBlock</c>).</summary>
public static class LlamaNames
{
    public const string Embed = "model.embed_tokens.weight";
    public const string FinalNorm = "model.norm.weight";
    public const string LmHead = "lm_head.weight";

    public static string Layer(int i, string suffix) => $"model.layers.{i}.{suffix}";
    public static string AttnNorm(int i) => Layer(i, "input_layernorm.weight");
    public static string Q(int i) => Layer(i, "self_attn.q_proj.weight");
    public static string K(int i) => Layer(i, "self_attn.k_proj.weight");
    public static string V(int i) => Layer(i, "self_attn.v_proj.weight");
    public static string O(int i) => Layer(i, "self_attn.o_proj.weight");
    public static string QBias(int i) => Layer(i, "self_attn.q_proj.bias");
    public static string KBias(int i) => Layer(i, "self_attn.k_proj.bias");
    public static string VBias(int i) => Layer(i, "self_attn.v_proj.bias");
    public static string FfnNorm(int i) => Layer(i, "post_attention_layernorm.weight");
    public static string Gate(int i) => Layer(i, "mlp.gate_proj.weight");
    public static string Up(int i) => Layer(i, "mlp.up_proj.weight");
    public static string Down(int i) => Layer(i, "mlp.down_proj.weight");
}
