namespace EdgeTune.Federated.SecureAggregation.Internal;

/// <summary>What every party checks of a roster: at least t clients, distinct ids, sorted ordinal.</summary>
internal static class RosterRules
{
    public static Dictionary<string, int> Check(SecAggRoster roster, int threshold, string who)
    {
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < roster.Clients.Count; i++)
        {
            var c = roster.Clients[i];
            if (string.IsNullOrEmpty(c.ClientId)) throw new SecureAggregationException($"secure aggregation ({who}): roster entry {i} has no id");
            if (!index.TryAdd(c.ClientId, i)) throw new SecureAggregationException($"secure aggregation ({who}): '{c.ClientId}' appears twice in the roster");
            if (i > 0 && string.CompareOrdinal(roster.Clients[i - 1].ClientId, c.ClientId) >= 0)
                throw new SecureAggregationException($"secure aggregation ({who}): the roster is not sorted by id");
        }
        if (index.Count < threshold)
            throw new SecureAggregationException($"secure aggregation ({who}): {index.Count} clients in the roster; threshold is {threshold}");
        return index;
    }
}
