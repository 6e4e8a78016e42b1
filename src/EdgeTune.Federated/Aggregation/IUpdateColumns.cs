namespace EdgeTune.Federated.Aggregation;

/// <summary>
/// A round's updates read by blocks of coordinates, for the strategies that need every update at once (median,
/// trimmed mean, Krum): the server keeps the updates in a scratch file and hands them over as columns, so that only
/// one block of <see cref="UpdateBlocks.BudgetBytes"/> is in memory at a time, whatever the number of clients.
/// </summary>
public interface IUpdateColumns
{
    /// <summary>Number of updates (clients).</summary>
    int Count { get; }

    /// <summary>Values per update (the global vector's length).</summary>
    int Length { get; }

    string ClientId(int index);

    long NumExamples(int index);

    /// <summary>Coordinates [<paramref name="start"/>, <paramref name="start"/> + <paramref name="length"/>) of every update,
    /// update by update: <c>block[c · length + j]</c> is update c's value at <c>start + j</c>.</summary>
    void Read(int start, int length, Span<float> block);
}

/// <summary>A strategy that aggregates from <see cref="IUpdateColumns"/> (its list form runs the same code over the
/// updates in memory).</summary>
public interface IColumnAggregator : IAggregationStrategy
{
    /// <summary>The next global vector from <paramref name="global"/> and the round's updates, read block by block.</summary>
    float[] Aggregate(int round, ReadOnlySpan<float> global, IUpdateColumns updates);
}

/// <summary>The block size column strategies read with.</summary>
public static class UpdateBlocks
{
    /// <summary>Update values a column strategy holds at once: 16 MiB (plus, for Krum, a clients × clients matrix of doubles).</summary>
    public const long BudgetBytes = 16 << 20;

    /// <summary>Coordinates per block for <paramref name="count"/> updates of <paramref name="length"/> values.</summary>
    public static int Length(int count, int length) => (int)Math.Clamp(BudgetBytes / (4L * Math.Max(1, count)), 1, Math.Max(1, length));

    /// <summary>Calls <paramref name="body"/>(start, length, block) for consecutive blocks covering every coordinate.</summary>
    public static void ForEach(IUpdateColumns updates, Action<int, int, float[]> body)
    {
        ArgumentNullException.ThrowIfNull(updates);
        int blockLength = Length(updates.Count, updates.Length);
        var block = new float[(long)blockLength * updates.Count];
        for (int start = 0; start < updates.Length; start += blockLength)
        {
            int n = Math.Min(blockLength, updates.Length - start);
            updates.Read(start, n, block.AsSpan(0, n * updates.Count));
            body(start, n, block);
        }
    }

    /// <summary>Updates in memory seen as columns.</summary>
    public static IUpdateColumns Of(IReadOnlyList<ClientUpdate> updates) => new ListColumns(updates);

    private sealed class ListColumns(IReadOnlyList<ClientUpdate> updates) : IUpdateColumns
    {
        public int Count => updates.Count;
        public int Length => updates.Count == 0 ? 0 : updates[0].Delta.Length;
        public string ClientId(int index) => updates[index].ClientId;
        public long NumExamples(int index) => updates[index].NumExamples;

        public void Read(int start, int length, Span<float> block)
        {
            for (int c = 0; c < updates.Count; c++) updates[c].Delta.AsSpan(start, length).CopyTo(block.Slice(c * length, length));
        }
    }
}
