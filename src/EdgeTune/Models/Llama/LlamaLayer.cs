using EdgeTune.Tensors;

namespace EdgeTune.Models.Llama;

/// <summary>The weights of one decoder block. Norm weights and biases are F32; projections keep their stored dtype.</summary>
public sealed record LlamaLayer(
    Tensor AttnNorm,
    Tensor Wq, Tensor Wk, Tensor Wv, Tensor Wo,
    Tensor? Bq, Tensor? Bk, Tensor? Bv,
    Tensor FfnNorm,
    Tensor WGate, Tensor WUp, Tensor WDown);
