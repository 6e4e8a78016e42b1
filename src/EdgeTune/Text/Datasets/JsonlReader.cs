using System.Text.Json;
using EdgeTune.Text.Datasets.Internal;

namespace EdgeTune.Text.Datasets;

/// <summary>
/// Reads a JSONL data file into <see cref="DataSample"/>s. Blank lines are skipped (not counted as rows). A line
/// that is not valid JSON, not an object, lacks a required field, has a field of the wrong type or an empty
/// output is rejected with its reason and line number; it never stops the load. The row layouts are those of
/// <see cref="DataFormat"/>; the same reasons apply to JSON arrays, CSV and Parquet rows.
/// </summary>
public static class JsonlReader
{
    public const string ReasonInvalidJson = "invalid JSON";
    public const string ReasonNotObject = "not a JSON object";
    public const string ReasonMissingField = "missing field";
    public const string ReasonWrongType = "wrong type";
    public const string ReasonEmpty = "empty field";
    public const string ReasonNoAssistant = "no assistant message";
    public const string ReasonBadRole = "unknown role";

    /// <summary>The result of reading a file: the format used, the rows read and the samples of the good rows.</summary>
    public sealed record Result(DataFormat Format, int RowsRead, IReadOnlyList<DataSample> Samples)
    {
        /// <summary>How the columns map onto prompt and completion (for the data report).</summary>
        public string Columns { get; init; } = DataLayouts.Mapping(Format);
    }

    /// <summary>Reads <paramref name="path"/>; rejections go to <paramref name="rejections"/>.</summary>
    /// <exception cref="InvalidDataException">Auto detection found no line with known columns, or the data is preference data.</exception>
    internal static Result Read(string path, DataFormat format, RejectionLog rejections) =>
        Read(File.ReadLines(path), path, format, rejections);

    internal static Result Read(IEnumerable<string> lines, string source, DataFormat format, RejectionLog rejections)
    {
        if (format == DataFormat.PlainText) throw new ArgumentException("JsonlReader: PlainText is not a JSONL format", nameof(format));
        var rows = new List<(int Line, string Text)>();
        int n = 0;
        foreach (string raw in lines)
        {
            n++;
            if (!string.IsNullOrWhiteSpace(raw)) rows.Add((n, raw));
        }
        IReadOnlyCollection<string>? columns = null;
        if (format == DataFormat.Auto)
        {
            columns = FirstKnownColumns(rows.Select(r => r.Text)) ?? FirstColumns(rows.Select(r => r.Text)) ?? [];
            format = DataLayouts.Detect(columns, source);
        }

        var samples = new List<DataSample>(rows.Count);
        foreach (var (line, text) in rows)
        {
            JsonDocument doc;
            try { doc = JsonDocument.Parse(text); }
            catch (JsonException e) { rejections.Add(line, ReasonInvalidJson, RowConverter.Shorten(e.Message)); continue; }
            using (doc) RowConverter.Convert(line, doc.RootElement, format, samples, rejections);
        }
        return new Result(format, rows.Count, samples) { Columns = DataLayouts.Mapping(format, columns) };
    }

    /// <summary>The format of the first line that is a JSON object with known columns, or null (none, or preference data).</summary>
    public static DataFormat? Detect(IEnumerable<string> lines) =>
        FirstKnownColumns(lines) is { } columns ? DataLayouts.TryDetect(columns) : null;

    /// <summary>The keys of the first object line whose keys name a layout or preference data.</summary>
    private static IReadOnlyCollection<string>? FirstKnownColumns(IEnumerable<string> lines)
    {
        foreach (var keys in ObjectKeys(lines))
            if (DataLayouts.TryDetect(keys) is not null || DataLayouts.IsPreference(keys)) return keys;
        return null;
    }

    private static IReadOnlyCollection<string>? FirstColumns(IEnumerable<string> lines) => ObjectKeys(lines).FirstOrDefault();

    private static IEnumerable<IReadOnlyCollection<string>> ObjectKeys(IEnumerable<string> lines)
    {
        foreach (string line in lines)
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            string[]? keys = null;
            try
            {
                using var doc = JsonDocument.Parse(line);
                if (doc.RootElement.ValueKind == JsonValueKind.Object) keys = doc.RootElement.EnumerateObject().Select(p => p.Name).ToArray();
            }
            catch (JsonException) { }
            if (keys is not null) yield return keys;
        }
    }
}
