using System.Globalization;
using System.Text;
using System.Text.Json;

namespace EdgeTune.Text.Datasets;

/// <summary>A rejected row: its 1-based line number and what was wrong with it.</summary>
public sealed record RejectedRow(int Line, string Detail);

/// <summary>All rows rejected for one reason: how many, and the first few of them.</summary>
public sealed record RejectionReason(string Reason, int Count, IReadOnlyList<RejectedRow> Examples);

/// <summary>
/// What loading a data file did: the detected format and column mapping, rows read, used and rejected (with reasons
/// and row numbers), tokens, truncation and packing. "Rows" are lines of a JSONL file (blank lines are not counted),
/// elements of a JSON array, records of a CSV or Parquet file, or lines of a plain text file.
/// A row can give several samples (self-instruct <c>instances</c>). Token counts: <see cref="TokensTotal"/> is every
/// token of every used sample before truncation; <see cref="TrainedTokens"/> and <see cref="ValidationTrainedTokens"/>
/// count target positions that carry a loss (not <see cref="Tensors.CrossEntropy.IgnoreIndex"/>).
/// </summary>
public sealed record DataReport
{
    public required string Source { get; init; }
    public required DataFormat Format { get; init; }
    /// <summary>The container the rows came from.</summary>
    public DataFileKind FileKind { get; init; }
    /// <summary>How the columns were read, e.g. "alpaca: instruction+input -> prompt, output -> completion".</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.Never)] // written as null when unknown
    public string? Columns { get; init; }
    public required int SeqLen { get; init; }
    public required bool Packed { get; init; }
    public int RowsRead { get; init; }
    public int RowsUsed { get; init; }
    public int RowsRejected { get; init; }
    public IReadOnlyList<RejectionReason> Rejections { get; init; } = [];
    public int Samples { get; init; }
    public long TokensTotal { get; init; }
    public int TruncatedRows { get; init; }
    public long TruncatedTokens { get; init; }
    public int TrainRows { get; init; }
    public int ValidationRows { get; init; }
    public int TrainSequences { get; init; }
    public int ValidationSequences { get; init; }
    /// <summary>Sequences that hold more than one sample.</summary>
    public int PackedSequences { get; init; }
    public long TrainedTokens { get; init; }
    public long ValidationTrainedTokens { get; init; }
    /// <summary>Positions of train and validation sequences filled with padding.</summary>
    public long PaddingTokens { get; init; }

    /// <summary>The report as one line of JSON (snake_case keys, the format as a string).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, EdgeTune.Internal.EdgeTuneJson.Default.DataReport);

    /// <summary>Reads a report written by <see cref="ToJson"/>.</summary>
    public static DataReport FromJson(string json) =>
        JsonSerializer.Deserialize(json, EdgeTune.Internal.EdgeTuneJson.Default.DataReport) ?? throw new JsonException("DataReport.FromJson: null");

    /// <summary>A few human-readable lines.</summary>
    public string Describe()
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(c, $"data {Source} ({Format}, {FileKind}): {RowsRead} rows read, {RowsUsed} used, {RowsRejected} rejected");
        if (Samples != RowsUsed) sb.Append(c, $", {Samples} samples");
        sb.AppendLine();
        if (Columns is not null) sb.AppendLine(c, $"  columns: {Columns}");
        foreach (var r in Rejections)
        {
            sb.Append(c, $"  rejected {r.Count} x {r.Reason}");
            if (r.Examples.Count > 0)
                sb.Append(" (").Append(string.Join("; ", r.Examples.Select(e => string.Create(c, $"line {e.Line}: {e.Detail}")))).Append(')');
            sb.AppendLine();
        }
        sb.AppendLine(c, $"  tokens {TokensTotal}, trained on {TrainedTokens} (validation {ValidationTrainedTokens}); truncated rows {TruncatedRows} ({TruncatedTokens} tokens cut)");
        sb.Append(c, $"  seq-len {SeqLen}: {TrainSequences} train sequences ({TrainRows} rows), {ValidationSequences} validation ({ValidationRows} rows), ");
        sb.Append(Packed ? string.Create(c, $"{PackedSequences} packed") : "packing off");
        sb.Append(c, $", {PaddingTokens} padding tokens");
        return sb.ToString();
    }
}
