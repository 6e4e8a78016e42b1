using System.Text.Json;
using EdgeTune.Text.Datasets.Internal;

namespace EdgeTune.Text.Datasets;

/// <summary>
/// Reads a .json file that holds one array of row objects (as Alpaca's <c>alpaca_data.json</c> and most exported
/// datasets do). The layout comes from the keys of the first object; each element is one row, numbered from 1 in
/// rejections. A file that is not an array of objects is refused: it is never trained as text.
/// </summary>
public static class JsonArrayReader
{
    /// <exception cref="InvalidDataException">not valid JSON, not an array, or no known columns.</exception>
    internal static JsonlReader.Result Read(string path, DataFormat format, RejectionLog rejections)
    {
        JsonDocument doc;
        try
        {
            using var stream = File.OpenRead(path);
            doc = JsonDocument.Parse(stream, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON ({RowConverter.Shorten(e.Message)}); expected an array of row objects or JSONL", e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Array)
                throw new InvalidDataException($"{path}: the JSON is {root.ValueKind}, expected an array of row objects (or one object per line, JSONL)");
            string[] columns = root.EnumerateArray().FirstOrDefault(e => e.ValueKind == JsonValueKind.Object) is { ValueKind: JsonValueKind.Object } first
                ? first.EnumerateObject().Select(p => p.Name).ToArray() : [];
            if (format == DataFormat.Auto) format = DataLayouts.Detect(columns, path);
            var samples = new List<DataSample>();
            int row = 0;
            foreach (var element in root.EnumerateArray()) RowConverter.Convert(++row, element, format, samples, rejections);
            return new JsonlReader.Result(format, row, samples) { Columns = DataLayouts.Mapping(format, columns) };
        }
    }
}
