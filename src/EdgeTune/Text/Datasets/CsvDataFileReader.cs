using System.Text.Json;
using CsvHelper;
using EdgeTune.Text.Datasets.Internal;

namespace EdgeTune.Text.Datasets;

/// <summary>
/// Reads a CSV (comma) or TSV (tab) data file with a header row naming the columns of a <see cref="DataFormat"/>
/// layout. Cells are strings; a cell of a list column (<c>messages</c>, <c>conversations</c>, <c>instances</c>, or a
/// <c>prompt</c>/<c>completion</c> that starts with '[') holds the list as JSON text. Rows are numbered by the line
/// they start on (the header is line 1).
/// </summary>
public static class CsvDataFileReader
{
    private static readonly HashSet<string> ListColumns = new(StringComparer.Ordinal) { "messages", "conversations", "instances", "prompt", "completion" };

    /// <exception cref="InvalidDataException">no header, or no known columns.</exception>
    internal static JsonlReader.Result Read(string path, DataFormat format, RejectionLog rejections)
    {
        char separator = Path.GetExtension(path).Equals(".tsv", StringComparison.OrdinalIgnoreCase) ? '\t' : ',';
        using var csv = CsvReader.FromFile(path, new CsvReaderOptions { Separator = separator, HasHeader = true, TrackLineNumbers = true });
        string[] columns = [.. csv.Headers];
        if (columns.Length == 0 || columns.All(string.IsNullOrWhiteSpace))
            throw new InvalidDataException($"{path}: no header row; a CSV data file needs one naming its columns (text, instruction/input/output, messages, conversations or prompt/completion)");
        if (format == DataFormat.Auto) format = DataLayouts.Detect(columns, path);
        var json = new JsonRows();
        var samples = new List<DataSample>();
        int rows = 0;
        while (csv.Read())
        {
            rows++;
            int line = (int)csv.LineNumber;
            string? bad = null;
            using var doc = json.Build(w =>
            {
                for (int i = 0; i < columns.Length && i < csv.FieldCount; i++)
                {
                    string? cell = csv.GetStringOrNull(i);
                    w.WritePropertyName(columns[i]);
                    if (cell is null) { w.WriteNullValue(); continue; }
                    if (ListColumns.Contains(columns[i]) && cell.TrimStart().StartsWith('['))
                    {
                        try
                        {
                            using var cellDoc = JsonDocument.Parse(cell);
                            cellDoc.RootElement.WriteTo(w);
                            continue;
                        }
                        catch (JsonException e) when (columns[i] is not ("prompt" or "completion")) // those may be text that starts with '['
                        {
                            bad ??= $"column '{columns[i]}': {RowConverter.Shorten(e.Message)}";
                        }
                        catch (JsonException) { }
                    }
                    w.WriteStringValue(cell);
                }
            });
            if (bad is not null) { rejections.Add(line, JsonlReader.ReasonInvalidJson, bad); continue; }
            RowConverter.Convert(line, doc.RootElement, format, samples, rejections);
        }
        return new JsonlReader.Result(format, rows, samples) { Columns = DataLayouts.Mapping(format, columns) };
    }
}
