using EdgeTune.Autograd;

namespace EdgeTune.Nn;

/// <summary>
/// A container module: ordered named child slots, each typed by the module first put there (an
/// <see cref="ILinear"/> slot takes only another ILinear), plus named parameters it holds itself
/// (norm weights). Subclasses read their children through <see cref="Get{T}"/> on every call, so a
/// module swapped in with <see cref="SetChild"/> (LoRA, quantization, QAT, pruning) takes effect at once.
/// </summary>
public class Module : IModule
{
    private readonly List<string> _order = [];
    private readonly Dictionary<string, (IModule Module, Type Slot)> _children = new(StringComparer.Ordinal);
    private readonly List<KeyValuePair<string, Parameter>> _own = [];

    /// <summary>Adds a child slot typed <typeparamref name="TSlot"/>.</summary>
    public TSlot Add<TSlot>(string name, TSlot module) where TSlot : class, IModule
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(module);
        if (name.Contains('.')) throw new ArgumentException($"module child name '{name}' must not contain '.'", nameof(name));
        if (!_children.TryAdd(name, (module, typeof(TSlot))))
            throw new ArgumentException($"{GetType().Name}: a child named '{name}' already exists", nameof(name));
        _order.Add(name);
        return module;
    }

    /// <summary>Adds a parameter the module holds itself under a local name ("input_layernorm.weight").</summary>
    public Parameter AddParameter(string localName, Parameter parameter)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        _own.Add(new(localName, parameter));
        return parameter;
    }

    /// <summary>The child <paramref name="name"/> as <typeparamref name="T"/>.</summary>
    public T Get<T>(string name) where T : class, IModule =>
        _children.TryGetValue(name, out var c)
            ? c.Module as T ?? throw new InvalidCastException($"{GetType().Name}: child '{name}' is a {c.Module.GetType().Name}, not {typeof(T).Name}")
            : throw new KeyNotFoundException($"{GetType().Name}: no child named '{name}'");

    /// <summary>The parameter this module holds itself under <paramref name="localName"/>.</summary>
    public Parameter GetParameter(string localName)
    {
        foreach (var p in _own)
            if (p.Key == localName) return p.Value;
        throw new KeyNotFoundException($"{GetType().Name}: no parameter named '{localName}'");
    }

    public IReadOnlyList<KeyValuePair<string, IModule>> Children =>
        _order.Select(n => new KeyValuePair<string, IModule>(n, _children[n].Module)).ToList();

    public void SetChild(string name, IModule module)
    {
        ArgumentNullException.ThrowIfNull(module);
        if (!_children.TryGetValue(name, out var c)) throw new KeyNotFoundException($"{GetType().Name}: no child named '{name}' to replace");
        if (!c.Slot.IsInstanceOfType(module))
            throw new ArgumentException($"{GetType().Name}: child '{name}' must be a {c.Slot.Name}; got {module.GetType().Name}");
        _children[name] = (module, c.Slot);
    }

    public IEnumerable<Parameter> Parameters =>
        _own.Select(p => p.Value).Concat(_order.SelectMany(n => _children[n].Module.Parameters));
}
