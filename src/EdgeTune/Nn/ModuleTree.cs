using System.Text.RegularExpressions;

namespace EdgeTune.Nn;

/// <summary>
/// Traversal and replacement over a module tree by dotted path: <see cref="Walk"/> lists every
/// (path, module) depth-first in child order, <see cref="Get"/> and <see cref="Replace"/> address one
/// path, <see cref="Match"/> selects paths by glob. LoRA, QAT, PTQ, pruning and calibration recorders find
/// their targets this way for any model family, and swap them in with <see cref="Replace"/>.
/// </summary>
public static class ModuleTree
{
    /// <summary>Every module under <paramref name="root"/> (root excluded) with its path, depth-first in child order.</summary>
    public static IEnumerable<(string Path, IModule Module)> Walk(IModule root, string prefix = "")
    {
        ArgumentNullException.ThrowIfNull(root);
        foreach (var (name, child) in root.Children)
        {
            string path = prefix.Length == 0 ? name : prefix + "." + name;
            yield return (path, child);
            foreach (var inner in Walk(child, path)) yield return inner;
        }
    }

    /// <summary>Every module of type <typeparamref name="T"/> with its path.</summary>
    public static IEnumerable<(string Path, T Module)> All<T>(IModule root) where T : class, IModule =>
        Walk(root).Where(x => x.Module is T).Select(x => (x.Path, (T)x.Module));

    /// <summary>The module at <paramref name="path"/>.</summary>
    public static IModule Get(IModule root, string path) =>
        Find(root, path, out var missing, out var parent) ?? throw new KeyNotFoundException($"module path '{path}': no child '{missing}' under {parent.GetType().Name}");

    /// <summary>The module at <paramref name="path"/>, or false when some segment of it does not exist.</summary>
    public static bool TryGet(IModule root, string path, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IModule? module) =>
        (module = Find(root, path, out _, out _)) is not null;

    /// <summary>Walks <paramref name="path"/> down from <paramref name="root"/>; null with the first missing segment and its parent.</summary>
    private static IModule? Find(IModule root, string path, out string? missing, out IModule parent)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentException.ThrowIfNullOrEmpty(path);
        parent = root;
        foreach (string part in path.Split('.'))
        {
            IModule? next = null;
            foreach (var (name, child) in parent.Children)
                if (name == part) { next = child; break; }
            if (next is null) { missing = part; return null; }
            parent = next;
        }
        missing = null;
        return parent;
    }

    /// <summary>Puts <paramref name="module"/> at <paramref name="path"/>; returns the module it replaced.</summary>
    public static IModule Replace(IModule root, string path, IModule module)
    {
        ArgumentNullException.ThrowIfNull(module);
        int dot = path.LastIndexOf('.');
        IModule parent = dot < 0 ? root : Get(root, path[..dot]);
        string name = path[(dot + 1)..];
        var old = parent.Children.FirstOrDefault(c => c.Key == name).Value
            ?? throw new KeyNotFoundException($"module path '{path}': no child '{name}' to replace");
        parent.SetChild(name, module);
        return old;
    }

    /// <summary>True when <paramref name="path"/> matches <paramref name="glob"/>: <c>*</c> matches within one
    /// dotted segment, <c>**</c> across segments; a glob with no dot also matches the last segment alone
    /// (<c>q_proj</c> matches <c>model.layers.0.self_attn.q_proj</c>).</summary>
    public static bool Match(string glob, string path)
    {
        ArgumentNullException.ThrowIfNull(glob);
        ArgumentNullException.ThrowIfNull(path);
        if (!glob.Contains('.'))
            return Regex.IsMatch(path[(path.LastIndexOf('.') + 1)..], GlobRegex(glob), RegexOptions.CultureInvariant);
        return Regex.IsMatch(path, GlobRegex(glob), RegexOptions.CultureInvariant);
    }

    private static string GlobRegex(string glob) =>
        "^" + Regex.Escape(glob).Replace(@"\*\*", "\u0001").Replace(@"\*", "[^.]*").Replace("\u0001", ".*").Replace(@"\?", "[^.]") + "$";

    /// <summary>The block index in a path such as <c>model.layers.3.self_attn.q_proj</c> or BERT's
    /// <c>encoder.layer.3.attention.self.query</c> (the number after a <c>layers</c> or <c>layer</c> segment), or -1.</summary>
    public static int LayerIndex(string path)
    {
        string[] parts = path.Split('.');
        for (int i = 0; i + 1 < parts.Length; i++)
            if (parts[i] is "layers" or "layer" && int.TryParse(parts[i + 1], out int n)) return n;
        return -1;
    }
}
