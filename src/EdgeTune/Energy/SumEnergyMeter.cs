namespace EdgeTune.Energy;

/// <summary>The sum of several meters (e.g. all CPU packages, or GPU + CPU estimate). It is an estimate
/// when any part is; it is available only when every part is.</summary>
public sealed class SumEnergyMeter : IEnergyMeter
{
    public SumEnergyMeter(string id, string label, IReadOnlyList<IEnergyMeter> parts, MeasureKind kind = MeasureKind.Sum)
    {
        ArgumentNullException.ThrowIfNull(parts);
        if (parts.Count == 0) throw new ArgumentException("a sum needs at least one meter", nameof(parts));
        Id = id;
        Parts = parts;
        Scope = new EnergyScope(kind, label, string.Join(" + ", parts.Select(p => p.Id)));
    }

    public IReadOnlyList<IEnergyMeter> Parts { get; }

    public string Id { get; }

    public EnergyScope Scope { get; }

    public bool IsEstimate => Parts.Any(p => p.IsEstimate);

    public MeterAvailability Availability
    {
        get
        {
            var missing = Parts.Where(p => !p.Availability.IsAvailable).ToList();
            if (missing.Count == 0) return MeterAvailability.Available;
            return MeterAvailability.Unavailable(
                string.Join("; ", missing.Select(p => $"{p.Id}: {p.Availability.Reason}")),
                missing.Select(p => p.Availability.Fix).FirstOrDefault(f => f is not null));
        }
    }

    public double ReadJoules()
    {
        double sum = 0;
        foreach (var p in Parts) sum += p.ReadJoules();
        return sum;
    }

    public override string ToString() => $"{Id}: {Scope.Describe()}";
}
