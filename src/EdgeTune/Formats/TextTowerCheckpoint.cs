using EdgeTune.Tensors;

namespace EdgeTune.Formats;

/// <summary>The text tower of a multimodal checkpoint under EdgeTune's plain tensor names (<see cref="HfTextTower.PlainName"/>);
/// the vision tower and projector tensors are hidden. Owns the inner reader.</summary>
public sealed class TextTowerCheckpoint : ICheckpointReader
{
    private readonly ICheckpointReader _inner;
    private readonly Dictionary<string, string> _stored = new(StringComparer.Ordinal);
    private readonly List<TensorInfo> _tensors = [];

    public TextTowerCheckpoint(ICheckpointReader inner)
    {
        _inner = inner ?? throw new ArgumentNullException(nameof(inner));
        foreach (var t in inner.Tensors)
        {
            if (HfTextTower.PlainName(t.Name) is not { } plain) continue;
            if (!_stored.TryAdd(plain, t.Name))
                throw new CheckpointFormatException(inner.Source, $"tensors '{_stored[plain]}' and '{t.Name}' both name the text tower's '{plain}'", t.Name);
            _tensors.Add(t with { Name = plain });
        }
    }

    public string Source => _inner.Source;
    public RopeStyle RopeLayout => _inner.RopeLayout;
    public IReadOnlyList<TensorInfo> Tensors => _tensors;
    public bool Contains(string name) => _stored.ContainsKey(name);

    public Tensor GetTensor(string name)
    {
        if (!_stored.TryGetValue(name, out var stored))
            throw new KeyNotFoundException($"{Source}: no text tower tensor named '{name}' ({_tensors.Count} text tower tensors in the checkpoint)");
        var t = _inner.GetTensor(stored);
        t.Name = name;
        return t;
    }

    public void Dispose() => _inner.Dispose();
}
