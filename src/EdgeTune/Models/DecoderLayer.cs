using EdgeTune.Formats;
using EdgeTune.Nn;
using EdgeTune.Tensors;

namespace EdgeTune.Models;

/// <summary>What a decoder block needs from the model around it: the config, the RoPE layout of its q/k rows,
/// and rotary tables (kind 0 = the global rope, kind 1 = the local rope of sliding-window layers).</summary>
public interface IDecoderContext
{
    HfConfig Config { get; }
    RopeStyle RopeStyle { get; }

    /// <summary>The rotary table of <paramref name="kind"/> covering at least <paramref name="positions"/> positions.</summary>
    RopeTable Rope(int kind, int positions);
}

/// <summary>
/// One decoder block of a family, written once against <see cref="IForward{TX}"/>: the same code runs on the
/// tape (training), over a KV cache (inference) and in the memory planner's shape-only pass. Its projections
/// are child modules (replaceable by path); its norm weights are parameters it holds.
/// </summary>
public abstract class DecoderLayer : Module
{
    protected DecoderLayer(IDecoderContext context, int index)
    {
        Context = context ?? throw new ArgumentNullException(nameof(context));
        Index = index;
    }

    public IDecoderContext Context { get; }

    /// <summary>Position of the block in the stack (its KV-cache layer).</summary>
    public int Index { get; }

    /// <summary>The projection at <paramref name="localPath"/> under this block ("self_attn.q_proj").</summary>
    public ILinear Proj(string localPath) => (ILinear)ModuleTree.Get(this, localPath);

    /// <summary>x (N, C) → (N, C). <paramref name="positions"/> is how many positions the pass covers (for the rotary table).</summary>
    public abstract TX Forward<TX>(IForward<TX> f, TX x, int positions);
}
