using EdgeTune.Models.Llama;
using EdgeTune.Nn;

namespace EdgeTune.Adapters.Internal;

/// <summary>The seven projection slots of a <see cref="LlamaModel"/>'s layers, read and written by short name.</summary>
internal static class LlamaSlots
{
    public static readonly string[] ShortNames = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

    public static ILinear Get(LlamaLayer l, string shortName) => shortName switch
    {
        "q_proj" => l.Q, "k_proj" => l.K, "v_proj" => l.V, "o_proj" => l.O,
        "gate_proj" => l.Gate, "up_proj" => l.Up, "down_proj" => l.Down,
        _ => throw new ArgumentException($"no projection '{shortName}' in a Llama layer"),
    };

    public static void Set(LlamaLayer l, string shortName, ILinear value)
    {
        switch (shortName)
        {
            case "q_proj": l.Q = value; break;
            case "k_proj": l.K = value; break;
            case "v_proj": l.V = value; break;
            case "o_proj": l.O = value; break;
            case "gate_proj": l.Gate = value; break;
            case "up_proj": l.Up = value; break;
            case "down_proj": l.Down = value; break;
            default: throw new ArgumentException($"no projection '{shortName}' in a Llama layer");
        }
    }

    /// <summary>Every (layer index, short name) in a fixed order: layer by layer, q, k, v, o, gate, up, down.</summary>
    public static IEnumerable<(int Layer, string Short)> All(LlamaModel model)
    {
        for (int i = 0; i < model.Layers.Count; i++)
            foreach (string s in ShortNames) yield return (i, s);
    }

    /// <summary>The layer index and short name of a projection name such as "model.layers.3.self_attn.q_proj".</summary>
    public static bool TryParse(string layerName, out int layer, out string shortName)
    {
        layer = -1;
        shortName = layerName[(layerName.LastIndexOf('.') + 1)..];
        const string prefix = "model.layers.";
        if (!layerName.StartsWith(prefix, StringComparison.Ordinal)) return false;
        int dot = layerName.IndexOf('.', prefix.Length);
        return dot > prefix.Length && int.TryParse(layerName.AsSpan(prefix.Length, dot - prefix.Length), out layer) && ShortNames.Contains(shortName);
    }
}
