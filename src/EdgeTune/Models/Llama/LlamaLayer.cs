using EdgeTune.Autograd;
using EdgeTune.Nn;

namespace EdgeTune.Models.Llama;

/// <summary>One decoder block: norm weights (F32) and the seven projections, each an <see cref="ILinear"/>
/// that adapters may replace.</summary>
public sealed class LlamaLayer(Parameter attnNorm, ILinear q, ILinear k, ILinear v, ILinear o, Parameter ffnNorm, ILinear gate, ILinear up, ILinear down)
{
    public Parameter AttnNorm { get; } = attnNorm;
    public ILinear Q { get; set; } = q;
    public ILinear K { get; set; } = k;
    public ILinear V { get; set; } = v;
    public ILinear O { get; set; } = o;
    public Parameter FfnNorm { get; } = ffnNorm;
    public ILinear Gate { get; set; } = gate;
    public ILinear Up { get; set; } = up;
    public ILinear Down { get; set; } = down;
}
