using System.Text;
using System.Text.Json.Serialization;
using Parquet;
using Parquet.Serialization;

namespace EdgeTune.Tests.Text.Datasets;

/// <summary>Row types of the data layouts, written to Parquet by Parquet.Net, and a small RFC 4180 CSV writer.</summary>
internal static class DataFileWriters
{
    public sealed class TextRow
    {
        [JsonPropertyName("text")] public string? Text { get; set; }
    }

    public sealed class AlpacaRow
    {
        [JsonPropertyName("instruction")] public string? Instruction { get; set; }
        [JsonPropertyName("input")] public string? Input { get; set; }
        [JsonPropertyName("output")] public string? Output { get; set; }
    }

    public sealed class Turn
    {
        [JsonPropertyName("role")] public string? Role { get; set; }
        [JsonPropertyName("content")] public string? Content { get; set; }
    }

    public sealed class MessagesRow
    {
        [JsonPropertyName("id")] public int Id { get; set; }
        [JsonPropertyName("messages")] public List<Turn>? Messages { get; set; }
    }

    public sealed class ShareGptTurn
    {
        [JsonPropertyName("from")] public string? From { get; set; }
        [JsonPropertyName("value")] public string? Value { get; set; }
    }

    public sealed class ShareGptRow
    {
        [JsonPropertyName("conversations")] public List<ShareGptTurn>? Conversations { get; set; }
    }

    public sealed class PromptCompletionRow
    {
        [JsonPropertyName("prompt")] public string? Prompt { get; set; }
        [JsonPropertyName("completion")] public string? Completion { get; set; }
    }

    public sealed class PreferenceRow
    {
        [JsonPropertyName("prompt")] public string? Prompt { get; set; }
        [JsonPropertyName("chosen")] public string? Chosen { get; set; }
        [JsonPropertyName("rejected")] public string? Rejected { get; set; }
    }

    public static Turn T(string role, string content) => new() { Role = role, Content = content };

    public static ShareGptTurn S(string from, string value) => new() { From = from, Value = value };

    public static byte[] ParquetBytes<T>(IEnumerable<T> rows, int rowGroupSize = 0)
    {
        using var ms = new MemoryStream();
        var options = new ParquetOptions();
        if (rowGroupSize > 0) options.RowGroupSize = rowGroupSize;
        ParquetSerializer.SerializeAsync(rows, ms, options).GetAwaiter().GetResult();
        return ms.ToArray();
    }

    public static string WriteParquet<T>(string path, IEnumerable<T> rows, int rowGroupSize = 0)
    {
        File.WriteAllBytes(path, ParquetBytes(rows, rowGroupSize));
        return path;
    }

    /// <summary>CSV text: fields with the separator, a quote or a line break are quoted, quotes doubled.</summary>
    public static string Csv(char separator, params string[][] records)
    {
        var sb = new StringBuilder();
        foreach (var record in records)
        {
            sb.AppendJoin(separator, record.Select(f =>
                f.IndexOfAny([separator, '"', '\n', '\r']) >= 0 ? "\"" + f.Replace("\"", "\"\"") + "\"" : f));
            sb.Append("\r\n");
        }
        return sb.ToString();
    }
}
