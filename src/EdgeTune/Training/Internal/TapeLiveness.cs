namespace EdgeTune.Training.Internal;

/// <summary>
/// Replays the memory behaviour of a <see cref="Autograd.Tape"/> over a list of ops, in bytes: forward
/// keeps every output value; backward visits recorded ops in reverse, allocating an input's gradient
/// when first accumulated into and freeing an output's value and gradient once its producer has run;
/// outputs of unrecorded ops live until the end. Used by <see cref="MemoryPlanner"/>.
/// </summary>
internal sealed class TapeLiveness
{
    private readonly List<Node> _nodes = [];

    private sealed record Node(string Name, long ValueBytes, long GradBytes, bool RequiresGrad, int[] Inputs, long InnerPeak);

    /// <summary>A leaf (input or parameter view) that the tape does not own.</summary>
    public int Leaf(string name, long gradBytes, bool requiresGrad) => Add(new Node(name, 0, gradBytes, requiresGrad, [], 0));

    /// <summary>An op output of <paramref name="valueBytes"/> (0 for a view) whose gradient is
    /// <paramref name="gradBytes"/>; it requires a gradient when an input does or a trainable parameter enters it.</summary>
    public int Op(string name, long valueBytes, long gradBytes, bool trainableParameter, params int[] inputs) =>
        Add(new Node(name, valueBytes, gradBytes, trainableParameter || inputs.Any(i => _nodes[i].RequiresGrad), inputs, 0));

    /// <summary>An op whose forward and backward briefly need <paramref name="innerPeak"/> more bytes (a checkpointed segment).</summary>
    public int Segment(string name, long valueBytes, bool requiresGrad, long innerPeak, int input) =>
        Add(new Node(name, valueBytes, valueBytes, requiresGrad || _nodes[input].RequiresGrad, [input], innerPeak));

    public bool RequiresGrad(int node) => _nodes[node].RequiresGrad;

    private int Add(Node n)
    {
        _nodes.Add(n);
        return _nodes.Count - 1;
    }

    /// <summary>Peak bytes the tape holds over forward then backward from the last node.</summary>
    public long Peak()
    {
        long live = 0, peak = 0;
        foreach (var n in _nodes)
        {
            peak = Math.Max(peak, live + n.InnerPeak + n.ValueBytes);
            live += n.ValueBytes;
        }
        peak = Math.Max(peak, live);
        var hasGrad = new bool[_nodes.Count];
        int last = _nodes.Count - 1;
        if (last < 0) return 0;
        hasGrad[last] = true;
        live += _nodes[last].GradBytes;
        peak = Math.Max(peak, live);
        for (int i = last; i >= 0; i--)
        {
            var n = _nodes[i];
            if (n.Inputs.Length == 0 || !n.RequiresGrad) continue; // leaves, unrecorded ops: kept until reset
            if (hasGrad[i])
            {
                peak = Math.Max(peak, live + n.InnerPeak);
                foreach (int j in n.Inputs)
                {
                    if (!_nodes[j].RequiresGrad || hasGrad[j]) continue;
                    hasGrad[j] = true;
                    live += _nodes[j].GradBytes; // parameters are not nodes: their gradients are counted apart
                }
                peak = Math.Max(peak, live);
            }
            live -= n.ValueBytes + (hasGrad[i] ? n.GradBytes : 0);
        }
        return peak;
    }
}
