namespace EdgeTune.Federated.Aggregation;

/// <summary>One named tensor inside a flat update vector.</summary>
public sealed record TensorSlot(string Name, int[] Shape, long Offset)
{
    public long Count => Shape.Aggregate(1L, (a, d) => a * d);
}

/// <summary>
/// How a flat float vector maps onto named tensors (an adapter's LoRA A/B matrices, in a fixed order).
/// Server and clients agree on it once per global version; every update is checked against it.
/// </summary>
public sealed class UpdateLayout : IEquatable<UpdateLayout>
{
    public UpdateLayout(IEnumerable<(string Name, int[] Shape)> tensors)
    {
        var slots = new List<TensorSlot>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        long offset = 0;
        foreach (var (name, shape) in tensors)
        {
            if (string.IsNullOrEmpty(name)) throw new ArgumentException("UpdateLayout: a tensor has an empty name");
            if (!names.Add(name)) throw new ArgumentException($"UpdateLayout: tensor '{name}' appears twice");
            if (shape.Length == 0 || shape.Any(d => d <= 0)) throw new ArgumentException($"UpdateLayout: tensor '{name}' has shape [{string.Join(", ", shape)}]; positive dimensions expected");
            var slot = new TensorSlot(name, (int[])shape.Clone(), offset);
            offset += slot.Count;
            slots.Add(slot);
        }
        Slots = slots;
        TotalLength = offset;
    }

    public IReadOnlyList<TensorSlot> Slots { get; }

    /// <summary>Total number of floats in an update.</summary>
    public long TotalLength { get; }

    public bool Equals(UpdateLayout? other) =>
        other is not null && other.Slots.Count == Slots.Count &&
        Slots.Zip(other.Slots).All(p => p.First.Name == p.Second.Name && p.First.Shape.AsSpan().SequenceEqual(p.Second.Shape));

    public override bool Equals(object? obj) => Equals(obj as UpdateLayout);

    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var s in Slots) { h.Add(s.Name); foreach (int d in s.Shape) h.Add(d); }
        return h.ToHashCode();
    }
}
