using EdgeTune.Federated.Aggregation;

namespace EdgeTune.Federated.Server.Internal;

/// <summary>Stand-ins used until the aggregation/validation library lands; deleted then.</summary>
internal static class Interim
{
    public static IAggregationStrategy Strategy(string name) => name == "fedavg"
        ? new FedAvg()
        : throw new ArgumentException($"strategy '{name}' is not available (only fedavg)");

    /// <summary>Null when the update is acceptable, else why not.</summary>
    public static string? Validate(UpdateLayout layout, ReadOnlySpan<float> delta, double maxNorm)
    {
        if (delta.Length != layout.TotalLength) return $"update has {delta.Length} values; the layout needs {layout.TotalLength}";
        double sq = 0;
        for (int i = 0; i < delta.Length; i++)
        {
            if (!float.IsFinite(delta[i])) return $"update value {i} is {delta[i]} (non-finite)";
            sq += (double)delta[i] * delta[i];
        }
        double norm = Math.Sqrt(sq);
        if (maxNorm > 0 && norm > maxNorm) return $"update L2 norm {norm:G4} exceeds the bound {maxNorm:G4}";
        return null;
    }

    private sealed class FedAvg : IAggregationStrategy
    {
        public string Name => "fedavg";

        public float[] Aggregate(int round, ReadOnlySpan<float> global, IReadOnlyList<ClientUpdate> updates)
        {
            var next = global.ToArray();
            double total = updates.Sum(u => (double)Math.Max(1, u.NumExamples));
            var acc = new double[next.Length];
            foreach (var u in updates)
            {
                double w = Math.Max(1, u.NumExamples) / total;
                for (int i = 0; i < acc.Length; i++) acc[i] += w * u.Delta[i];
            }
            for (int i = 0; i < next.Length; i++) next[i] += (float)acc[i];
            return next;
        }
    }
}
