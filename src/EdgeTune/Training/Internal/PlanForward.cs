using EdgeTune.Autograd;
using EdgeTune.Nn;
using EdgeTune.Tensors;

namespace EdgeTune.Training.Internal;

/// <summary>A value of the shape-only pass: a node of the liveness graph and its width (rows are fixed per pass).</summary>
internal readonly record struct PlanValue(int Node, long Cols);

/// <summary>
/// <see cref="IForward{TX}"/> (and <see cref="IEncoderForward{TX}"/>) for the memory planner: runs a family's block
/// definition without data, recording for every op what <see cref="TapeForward"/> (<see cref="TapeEncoderForward"/>) would
/// put on the tape (its output bytes, whether it needs a gradient) into a <see cref="TapeLiveness"/>. A LoRA-targeted
/// projection records what <c>LoraLinear</c> does on the tape: base, A (N, r), low-rank add.
/// </summary>
internal sealed class PlanForward(TapeLiveness g, FineTuneMethod method, int loraRank, IReadOnlyList<string> loraTargets, long rows, int elementBytes)
    : IEncoderForward<PlanValue>
{
    private readonly bool _full = method == FineTuneMethod.Full;

    public PlanForward(TapeLiveness g, MemoryPlanRequest r, long rows, int elementBytes) : this(g, r.Method, r.LoraRank, r.LoraTargets, rows, elementBytes) { }

    /// <summary>True when the request's LoRA targets (globs over full or short names) select <paramref name="name"/>.</summary>
    public static bool IsTarget(MemoryPlanRequest r, string name) => IsTarget(r.Method, r.LoraTargets, name);

    /// <summary>True when LoRA <paramref name="targets"/> (globs over full or short names) select <paramref name="name"/>.</summary>
    public static bool IsTarget(FineTuneMethod method, IReadOnlyList<string> targets, string name) =>
        method == FineTuneMethod.Lora && targets.Any(t => ModuleTree.Match(t, name));

    private long Bytes(long cols) => rows * cols * elementBytes;

    private PlanValue Op(string name, long cols, bool trainable, params int[] inputs) =>
        new(g.Op(name, Bytes(cols), Bytes(cols), trainable, inputs), cols);

    private PlanValue View(PlanValue x) => new(g.Op("reshape", 0, Bytes(x.Cols), false, x.Node), x.Cols);

    public PlanValue Linear(ILinear layer, PlanValue x)
    {
        long outCols = layer.OutFeatures;
        var y = Op(layer.Name, outCols, _full, x.Node);
        if (!IsTarget(method, loraTargets, layer.Name)) return y;
        // as LoraLinear records it: A (N, r), then the low-rank add y + s·h·Bᵀ (N, out), which keeps s·h (N, r)
        var a = Op(layer.Name + ".lora_A", loraRank, true, x.Node);
        return new(g.Op(layer.Name + ".lowrank_add", Bytes(outCols) + Bytes(loraRank), Bytes(outCols), true, y.Node, a.Node), outCols);
    }

    public PlanValue RmsNorm(PlanValue x, Parameter weight, double eps)
    {
        if (weight.Value.ElementCount == x.Cols) return Op("rmsnorm", x.Cols, _full, x.Node);
        return View(Op("rmsnorm", x.Cols, _full, View(x).Node));
    }

    public PlanValue Rope(PlanValue x, int heads, int headDim, RopeTable table, RopeStyle style) => View(Op("rope", x.Cols, false, View(x).Node));

    public PlanValue Attention(PlanValue q, PlanValue k, PlanValue v, in AttentionSpec spec) => Op("attention", q.Cols, false, q.Node, k.Node, v.Node);

    public PlanValue Add(PlanValue a, PlanValue b) => Op("add", a.Cols, false, a.Node, b.Node);

    public PlanValue SwiGlu(PlanValue gate, PlanValue up) => Op("swiglu", gate.Cols, false, gate.Node, up.Node);

    public PlanValue GeGlu(PlanValue gate, PlanValue up) => Op("mul", gate.Cols, false, Op("gelu", gate.Cols, false, gate.Node).Node, up.Node);

    public PlanValue Columns(PlanValue x, int start, int count) => Op("columns", count, false, x.Node);

    public PlanValue Scale(PlanValue x, double s) => Op("scale", x.Cols, false, x.Node);

    public PlanValue LayerNorm(PlanValue x, Parameter weight, Parameter bias, double eps) => Op("layernorm", x.Cols, _full, x.Node);

    public PlanValue MaskedAttention(PlanValue q, PlanValue k, PlanValue v, int heads, int headDim) => Op("masked_attention", q.Cols, false, q.Node, k.Node, v.Node);

    public PlanValue Gelu(PlanValue x) => Op("gelu", x.Cols, false, x.Node);
}
