namespace EdgeTune.Federated.Simulation;

/// <summary>Splits a token stream among simulated clients.</summary>
public static class TextSplit
{
    /// <summary>
    /// Non-IID: client i gets the i-th contiguous shard of the stream (different parts of a text: other
    /// characters, topics, styles). IID: windows of <paramref name="window"/> tokens are dealt round-robin,
    /// so every client sees every part of the text. Every client gets at least <paramref name="window"/> + 1 tokens.
    /// </summary>
    public static int[][] Split(int[] tokens, int clients, bool nonIid, int window)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (clients <= 0) throw new ArgumentOutOfRangeException(nameof(clients), clients, "TextSplit: at least one client");
        if (window <= 0) throw new ArgumentOutOfRangeException(nameof(window), window, "TextSplit: window must be > 0");
        if (tokens.Length < (long)clients * (window + 1))
            throw new ArgumentException($"TextSplit: {tokens.Length} tokens cannot give {clients} clients {window + 1} tokens each", nameof(tokens));
        var shards = new int[clients][];
        if (nonIid)
        {
            for (int i = 0; i < clients; i++)
            {
                int start = (int)((long)tokens.Length * i / clients), end = (int)((long)tokens.Length * (i + 1) / clients);
                shards[i] = tokens[start..end];
            }
            return shards;
        }
        var lists = Enumerable.Range(0, clients).Select(_ => new List<int>()).ToArray();
        int windows = tokens.Length / window;
        for (int w = 0; w < windows; w++) lists[w % clients].AddRange(tokens.AsSpan(w * window, window));
        lists[(windows) % clients].AddRange(tokens.AsSpan(windows * window));
        for (int i = 0; i < clients; i++) shards[i] = lists[i].ToArray();
        return shards;
    }

    /// <summary>The first <paramref name="trainFraction"/> of the lines (training) and the rest (validation tail).</summary>
    public static (string Train, string Validation) SplitLines(string text, double trainFraction = 0.9)
    {
        ArgumentNullException.ThrowIfNull(text);
        var lines = text.Split('\n');
        int cut = (int)Math.Round(lines.Length * trainFraction);
        return (string.Join('\n', lines[..cut]), string.Join('\n', lines[cut..]));
    }
}
