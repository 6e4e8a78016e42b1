using EdgeTune.Tensors;

namespace EdgeTune.Federated.Aggregation.Internal;

/// <summary>Input checks every strategy runs before aggregating (clear exceptions, never silent garbage).</summary>
internal static class RoundChecks
{
    /// <summary>Throws unless the round has at least one update, every delta has the global's length and
    /// (when <paramref name="needExamples"/>) every example count is positive.</summary>
    public static void Require(string strategy, int round, int globalLength, IReadOnlyList<ClientUpdate> updates, bool needExamples = true)
    {
        ArgumentNullException.ThrowIfNull(updates);
        if (updates.Count == 0)
            throw new ArgumentException($"{strategy}: round {round} has no client updates to aggregate");
        foreach (var u in updates)
        {
            if (u is null) throw new ArgumentException($"{strategy}: round {round} contains a null update");
            if (u.Delta is null) throw new ArgumentException($"{strategy}: round {round}: client '{u.ClientId}' sent no delta");
            if (u.Delta.Length != globalLength)
                throw new ShapeException($"{strategy}: round {round}: client '{u.ClientId}' delta has {u.Delta.Length} values but the global vector has {globalLength}");
            if (needExamples && u.NumExamples <= 0)
                throw new ArgumentException($"{strategy}: round {round}: client '{u.ClientId}' reports {u.NumExamples} examples; a positive count is expected");
        }
    }

    /// <summary>The same checks for updates read as columns.</summary>
    public static void RequireColumns(string strategy, int round, int globalLength, IUpdateColumns updates, bool needExamples = true)
    {
        ArgumentNullException.ThrowIfNull(updates);
        if (updates.Count == 0)
            throw new ArgumentException($"{strategy}: round {round} has no client updates to aggregate");
        if (updates.Length != globalLength)
            throw new ShapeException($"{strategy}: round {round}: the updates have {updates.Length} values but the global vector has {globalLength}");
        for (int c = 0; c < updates.Count; c++)
            if (needExamples && updates.NumExamples(c) <= 0)
                throw new ArgumentException($"{strategy}: round {round}: client '{updates.ClientId(c)}' reports {updates.NumExamples(c)} examples; a positive count is expected");
    }

    /// <summary>The example-weighted mean of the deltas, in double.</summary>
    public static double[] WeightedMeanDelta(int length, IReadOnlyList<ClientUpdate> updates)
    {
        var sum = new double[length];
        double total = 0;
        foreach (var u in updates)
        {
            double n = u.NumExamples;
            total += n;
            var d = u.Delta;
            for (int i = 0; i < length; i++) sum[i] += n * d[i];
        }
        for (int i = 0; i < length; i++) sum[i] /= total;
        return sum;
    }

    /// <summary>global + delta, rounded to float once.</summary>
    public static float[] Apply(ReadOnlySpan<float> global, ReadOnlySpan<double> delta)
    {
        var next = new float[global.Length];
        for (int i = 0; i < next.Length; i++) next[i] = (float)(global[i] + delta[i]);
        return next;
    }
}
