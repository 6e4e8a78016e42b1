namespace EdgeTune.Text.Datasets.Internal;

/// <summary>Collects rejected rows by reason, keeping the first few line numbers of each, in first-seen order.</summary>
internal sealed class RejectionLog(int maxExamples)
{
    private readonly List<(string Reason, List<RejectedRow> Examples)> _order = [];
    private readonly Dictionary<string, int> _index = new(StringComparer.Ordinal);
    private readonly List<int> _counts = [];
    private readonly HashSet<int> _lines = [];

    public int Rows => _lines.Count;

    /// <summary>Added to every line number recorded (rows of the later files of a multi-file dataset follow the earlier ones).</summary>
    public int LineOffset { get; set; }

    public bool Contains(int line) => _lines.Contains(line);

    /// <summary>The largest line number recorded so far (offset included).</summary>
    public int MaxLine { get; private set; }

    public void Add(int line, string reason, string detail)
    {
        line += LineOffset;
        MaxLine = Math.Max(MaxLine, line);
        if (!_index.TryGetValue(reason, out int i))
        {
            i = _order.Count;
            _index[reason] = i;
            _order.Add((reason, []));
            _counts.Add(0);
        }
        _counts[i]++;
        _lines.Add(line);
        if (_order[i].Examples.Count < maxExamples) _order[i].Examples.Add(new RejectedRow(line, detail));
    }

    public IReadOnlyList<RejectionReason> ToList() =>
        _order.Select((o, i) => new RejectionReason(o.Reason, _counts[i], o.Examples.ToArray())).ToArray();
}
