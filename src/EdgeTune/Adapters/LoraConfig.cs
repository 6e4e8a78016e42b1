using System.Text.RegularExpressions;
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
/// <see cref="LayerRange"/> (inclusive, decoder layer indices) narrows the choice further. <see cref="RankPattern"/> and
/// <see cref="AlphaPattern"/> override r and α per layer, keyed as PEFT keys its <c>rank_pattern</c>/<c>alpha_pattern</c>.
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

    /// <summary>Per-layer ranks overriding <see cref="Rank"/>, keyed as PEFT's <c>rank_pattern</c>: a key selects a layer
    /// whose full name equals it, ends with "." + the key, or is fully matched by the key as a regular expression
    /// (<c>(.*\.)?(key)$</c>); keys are tried in order, the first that selects the layer wins.</summary>
    public IReadOnlyDictionary<string, int>? RankPattern { get; init; }

    /// <summary>Per-layer α overriding <see cref="Alpha"/>, keyed as <see cref="RankPattern"/> (PEFT's <c>alpha_pattern</c>).</summary>
    public IReadOnlyDictionary<string, double>? AlphaPattern { get; init; }

    /// <summary>The multiplier s of B·A for layers without a pattern: α/r, or α/√r with rsLoRA.</summary>
    public double Scale => ScaleOf(Alpha, Rank);

    /// <summary>r of the layer named <paramref name="layerName"/> (its <see cref="RankPattern"/> entry, else <see cref="Rank"/>).</summary>
    public int RankFor(string layerName) =>
        RankPattern is { Count: > 0 } p && PatternKey(p.Keys, layerName) is { } k ? p[k] : Rank;

    /// <summary>α of the layer named <paramref name="layerName"/> (its <see cref="AlphaPattern"/> entry, else <see cref="Alpha"/>).</summary>
    public double AlphaFor(string layerName) =>
        AlphaPattern is { Count: > 0 } p && PatternKey(p.Keys, layerName) is { } k ? p[k] : Alpha;

    /// <summary>s of the layer named <paramref name="layerName"/>: its α/r (α/√r with rsLoRA).</summary>
    public double ScaleFor(string layerName) => ScaleOf(AlphaFor(layerName), RankFor(layerName));

    private double ScaleOf(double alpha, int rank) => UseRsLora ? alpha / Math.Sqrt(rank) : alpha / rank;

    /// <summary>The first of <paramref name="keys"/> that selects <paramref name="layerName"/> as PEFT's rank/alpha patterns
    /// do (equal, a "."-separated suffix, or a regular expression matching the whole name or a "."-separated tail of it), or null.</summary>
    public static string? PatternKey(IEnumerable<string> keys, string layerName)
    {
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(layerName);
        var list = keys as IReadOnlyCollection<string> ?? keys.ToList();
        if (list.Contains(layerName)) return layerName;
        foreach (string k in list)
            if (layerName.EndsWith("." + k, StringComparison.Ordinal)
                || Regex.IsMatch(layerName, PatternText(k), RegexOptions.CultureInvariant)) return k;
        return null;
    }

    /// <summary>PEFT's <c>re.match(rf"(.*\.)?({key})$", name)</c> as a .NET expression.</summary>
    private static string PatternText(string key) => "^(?:.*\\.)?(?:" + key + ")\\z";

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad field.</summary>
    public void Validate()
    {
        if (Rank <= 0) throw new ArgumentException($"LoraConfig.Rank must be positive, got {Rank}");
        if (!double.IsFinite(Alpha)) throw new ArgumentException($"LoraConfig.Alpha must be finite, got {Alpha}");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"LoraConfig.Dropout must lie in [0, 1), got {Dropout}");
        if (TargetModules is null || TargetModules.Count == 0) throw new ArgumentException("LoraConfig.TargetModules is empty");
        if (LayerRange is { } r && (r.First < 0 || r.Last < r.First))
            throw new ArgumentException($"LoraConfig.LayerRange ({r.First}, {r.Last}) is not a valid inclusive range");
        foreach (var (k, v) in RankPattern ?? new Dictionary<string, int>())
        {
            CheckKey("RankPattern", k);
            if (v <= 0) throw new ArgumentException($"LoraConfig.RankPattern['{k}'] must be positive, got {v}");
        }
        foreach (var (k, v) in AlphaPattern ?? new Dictionary<string, double>())
        {
            CheckKey("AlphaPattern", k);
            if (!double.IsFinite(v)) throw new ArgumentException($"LoraConfig.AlphaPattern['{k}'] must be finite, got {v}");
        }
    }

    private static void CheckKey(string field, string key)
    {
        if (string.IsNullOrEmpty(key)) throw new ArgumentException($"LoraConfig.{field} has an empty key");
        try { _ = new Regex(PatternText(key), RegexOptions.CultureInvariant); }
        catch (ArgumentException e) { throw new ArgumentException($"LoraConfig.{field} key '{key}' is not a valid regular expression: {e.Message}", e); }
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
