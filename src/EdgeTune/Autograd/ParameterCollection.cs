using System.Collections;

namespace EdgeTune.Autograd;

/// <summary>
/// Parameters in a fixed order under unique dotted names: the one traversal that savers, optimizers,
/// adapters, quantizers and federated clients share. Order is insertion order (deterministic).
/// </summary>
public sealed class ParameterCollection : IReadOnlyList<Parameter>, IDisposable
{
    private readonly List<Parameter> _items = [];
    private readonly Dictionary<string, Parameter> _byName = new(StringComparer.Ordinal);

    public ParameterCollection() { }

    public ParameterCollection(IEnumerable<Parameter> parameters)
    {
        foreach (var p in parameters) Add(p);
    }

    public int Count => _items.Count;

    public Parameter this[int index] => _items[index];

    /// <summary>The parameter named <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">No such name (the message lists a few that exist).</exception>
    public Parameter this[string name] => _byName.TryGetValue(name, out var p) ? p
        : throw new KeyNotFoundException($"no parameter named '{name}' among {Count} (e.g. {string.Join(", ", _items.Take(5).Select(x => x.Name))})");

    public bool TryGet(string name, out Parameter parameter) => _byName.TryGetValue(name, out parameter!);

    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>Adds <paramref name="parameter"/>; names must be unique.</summary>
    public Parameter Add(Parameter parameter)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        if (!_byName.TryAdd(parameter.Name, parameter))
            throw new ArgumentException($"a parameter named '{parameter.Name}' is already in the collection", nameof(parameter));
        _items.Add(parameter);
        return parameter;
    }

    /// <summary>Puts <paramref name="parameter"/> in the place of the parameter of the same name (same position);
    /// returns the one replaced, which the caller now owns.</summary>
    /// <exception cref="KeyNotFoundException">No parameter of that name.</exception>
    public Parameter Replace(Parameter parameter)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        Parameter old = this[parameter.Name];
        _items[_items.IndexOf(old)] = parameter;
        _byName[parameter.Name] = parameter;
        return old;
    }

    /// <summary>Adds every parameter of <paramref name="parameters"/> in order.</summary>
    public void AddRange(IEnumerable<Parameter> parameters)
    {
        foreach (var p in parameters) Add(p);
    }

    /// <summary>The trainable parameters, in order.</summary>
    public IEnumerable<Parameter> Trainable => _items.Where(p => p.Trainable);

    /// <summary>The frozen parameters, in order.</summary>
    public IEnumerable<Parameter> Frozen => _items.Where(p => !p.Trainable);

    /// <summary>Total elements of all parameters.</summary>
    public long ElementCount => _items.Sum(p => p.ElementCount);

    /// <summary>Total elements of trainable parameters.</summary>
    public long TrainableElementCount => _items.Where(p => p.Trainable).Sum(p => p.ElementCount);

    /// <summary>Parameters whose name matches a glob (<c>*</c> any run of characters, <c>?</c> one).</summary>
    public IEnumerable<Parameter> Matching(string glob) => _items.Where(p => GlobMatch(glob, p.Name));

    /// <summary>Freezes (or unfreezes) every parameter matching <paramref name="glob"/>; returns how many changed.</summary>
    public int SetTrainable(string glob, bool trainable)
    {
        int changed = 0;
        foreach (var p in Matching(glob))
        {
            if (p.Trainable == trainable) continue;
            p.Trainable = trainable;
            changed++;
        }
        return changed;
    }

    /// <summary>Zeroes every gradient.</summary>
    public void ZeroGrad()
    {
        foreach (var p in _items) p.ZeroGrad();
    }

    public IEnumerator<Parameter> GetEnumerator() => _items.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Disposes every parameter (and the values they own).</summary>
    public void Dispose()
    {
        foreach (var p in _items) p.Dispose();
    }

    internal static bool GlobMatch(string glob, string name)
    {
        // iterative wildcard match with backtracking to the last '*'
        int g = 0, n = 0, star = -1, mark = 0;
        while (n < name.Length)
        {
            if (g < glob.Length && (glob[g] == '?' || glob[g] == name[n])) { g++; n++; }
            else if (g < glob.Length && glob[g] == '*') { star = g++; mark = n; }
            else if (star >= 0) { g = star + 1; n = ++mark; }
            else return false;
        }
        while (g < glob.Length && glob[g] == '*') g++;
        return g == glob.Length;
    }
}
