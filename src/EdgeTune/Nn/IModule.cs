using EdgeTune.Autograd;

namespace EdgeTune.Nn;

/// <summary>
/// A node of a model's module tree: named children in a fixed order and the parameters it holds itself.
/// Paths join names with dots from the root, as Hugging Face does (<c>model.layers.3.self_attn.q_proj</c>).
/// Leaf layers (every <see cref="ILinear"/>, embeddings, heads) have no children: an adapter or a quantized
/// layer replaces the leaf as a whole and wraps what it replaced.
/// </summary>
public interface IModule
{
    /// <summary>Named children in order; empty for a leaf.</summary>
    IReadOnlyList<KeyValuePair<string, IModule>> Children => [];

    /// <summary>Replaces the child <paramref name="name"/>; a container checks that the new module fits the slot.</summary>
    void SetChild(string name, IModule module) =>
        throw new InvalidOperationException($"{GetType().Name} has no child slots (asked to set '{name}')");

    /// <summary>Every parameter of this module and (for containers) its subtree.</summary>
    IEnumerable<Parameter> Parameters { get; }
}
