using EdgeTune.Autograd;

namespace EdgeTune.Adapters;

/// <summary>How the A matrix of a LoRA pair starts (B always starts at zero).</summary>
public enum LoraInit
{
    /// <summary>U(−1/√in, 1/√in): PyTorch's Kaiming-uniform with a = √5, PEFT's default.</summary>
    KaimingUniform,

    /// <summary>N(0, 1/r), PEFT's "gaussian" init.</summary>
    Gaussian,
}

/// <summary>
/// A LoRA adapter's settings. <see cref="TargetModules"/> selects layers by their <see cref="Nn.ILinear.Name"/>:
/// an entry with a dot or a wildcard is a glob over the full name ("*.q_proj", "model.layers.*.mlp.*"); a plain
/// word is a short name that matches the last name segment ("q_proj" matches "model.layers.3.self_attn.q_proj").
/// <see cref="LayerRange"/> (inclusive, decoder layer indices) narrows the choice further.
/// </summary>
public sealed record LoraConfig
{
    /// <summary>Every projection of a Llama block.</summary>
    public static readonly IReadOnlyList<string> AllLlamaProjections = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

    /// <summary>Every projection name of the supported families, fused ones included (Phi-3's qkv_proj and gate_up_proj):
    /// the default "all linear layers of the blocks".</summary>
    public static readonly IReadOnlyList<string> AllProjections = ["q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj", "gate_proj", "up_proj", "gate_up_proj", "down_proj"];

    /// <summary>The rank r of A [r, in] and B [out, r].</summary>
    public int Rank { get; init; } = 8;

    /// <summary>α: the update is scaled by α/r (or α/√r with <see cref="UseRsLora"/>).</summary>
    public double Alpha { get; init; } = 16;

    /// <summary>Dropout probability on the adapter's input while training (recording tapes only).</summary>
    public double Dropout { get; init; }

    /// <summary>Rank-stabilised scaling α/√r instead of α/r.</summary>
    public bool UseRsLora { get; init; }

    /// <summary>Targets: globs over full layer names or short names (see the type remarks).</summary>
    public IReadOnlyList<string> TargetModules { get; init; } = ["q_proj", "v_proj"];

    /// <summary>Inclusive range of decoder layer indices to adapt; null adapts every layer.</summary>
    public (int First, int Last)? LayerRange { get; init; }

    /// <summary>Seed of the A initialisation and of the dropout masks.</summary>
    public ulong InitSeed { get; init; } = 42;

    public LoraInit Init { get; init; } = LoraInit.KaimingUniform;

    /// <summary>Weight-decomposed LoRA: a trained magnitude per output row of the weight.</summary>
    public bool UseDora { get; init; }

    /// <summary>DoRA only: treat the row norm ‖W + sBA‖ as a constant in backward (the DoRA paper §4.3 and PEFT
    /// do); false back-propagates through it as well (exact gradient).</summary>
    public bool DoraDetachNorm { get; init; } = true;

    /// <summary>The multiplier s of B·A: α/r, or α/√r with rsLoRA.</summary>
    public double Scale => UseRsLora ? Alpha / Math.Sqrt(Rank) : Alpha / Rank;

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad field.</summary>
    public void Validate()
    {
        if (Rank <= 0) throw new ArgumentException($"LoraConfig.Rank must be positive, got {Rank}");
        if (!double.IsFinite(Alpha)) throw new ArgumentException($"LoraConfig.Alpha must be finite, got {Alpha}");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"LoraConfig.Dropout must lie in [0, 1), got {Dropout}");
        if (TargetModules is null || TargetModules.Count == 0) throw new ArgumentException("LoraConfig.TargetModules is empty");
        if (LayerRange is { } r && (r.First < 0 || r.Last < r.First))
            throw new ArgumentException($"LoraConfig.LayerRange ({r.First}, {r.Last}) is not a valid inclusive range");
    }

    /// <summary>Whether the layer <paramref name="name"/> (in decoder layer <paramref name="layerIndex"/>, or -1) is a target.</summary>
    public bool Targets(string name, int layerIndex)
    {
        if (LayerRange is { } r && (layerIndex < r.First || layerIndex > r.Last)) return false;
        string shortName = name[(name.LastIndexOf('.') + 1)..];
        foreach (string t in TargetModules)
        {
            bool glob = t.Contains('.') || t.Contains('*') || t.Contains('?');
            if (glob ? ParameterCollection.GlobMatch(t, name) : t == shortName) return true;
        }
        return false;
    }
}
