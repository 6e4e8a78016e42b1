using System.Text.Json;
using EdgeTune.Text.Datasets.Internal;

namespace EdgeTune.Text.Datasets;

/// <summary>
/// Reads a JSONL data file into <see cref="DataSample"/>s. Blank lines are skipped (not counted as rows). A line
/// that is not valid JSON, not an object, lacks a required field, has a field of the wrong type or an empty
/// output is rejected with its reason and line number; it never stops the load.
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

    private static readonly HashSet<string> Roles = new(StringComparer.Ordinal) { "system", "user", "assistant", "tool" };

    /// <summary>The result of reading a file: the format used, the rows read and the samples of the good rows.</summary>
    public sealed record Result(DataFormat Format, int RowsRead, IReadOnlyList<DataSample> Samples);

    /// <summary>Reads <paramref name="path"/>; rejections go to <paramref name="rejections"/>.</summary>
    /// <exception cref="InvalidDataException">Auto detection found no line with <c>text</c>, <c>instruction</c> or <c>messages</c>.</exception>
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
        if (format == DataFormat.Auto) format = Detect(rows.Select(r => r.Text)) ?? throw new InvalidDataException(
            $"{source}: cannot detect the data format: no line is a JSON object with \"text\", \"instruction\" or \"messages\"");

        var samples = new List<DataSample>(rows.Count);
        foreach (var (line, text) in rows)
        {
            JsonDocument doc;
            try { doc = JsonDocument.Parse(text); }
            catch (JsonException e) { rejections.Add(line, ReasonInvalidJson, Shorten(e.Message)); continue; }
            using (doc)
            {
                var root = doc.RootElement;
                if (root.ValueKind != JsonValueKind.Object) { rejections.Add(line, ReasonNotObject, $"found {root.ValueKind}"); continue; }
                switch (format)
                {
                    case DataFormat.JsonlText: ReadText(line, root, samples, rejections); break;
                    case DataFormat.Instruction: ReadInstruction(line, root, samples, rejections); break;
                    case DataFormat.Chat: ReadChat(line, root, samples, rejections); break;
                    default: throw new ArgumentOutOfRangeException(nameof(format), format, null);
                }
            }
        }
        return new Result(format, rows.Count, samples);
    }

    /// <summary>The format of the first line that is a JSON object with a known field, or null.</summary>
    public static DataFormat? Detect(IEnumerable<string> lines)
    {
        foreach (string line in lines)
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                using var doc = JsonDocument.Parse(line);
                if (doc.RootElement.ValueKind != JsonValueKind.Object) continue;
                if (doc.RootElement.TryGetProperty("messages", out _)) return DataFormat.Chat;
                if (doc.RootElement.TryGetProperty("instruction", out _)) return DataFormat.Instruction;
                if (doc.RootElement.TryGetProperty("text", out _)) return DataFormat.JsonlText;
            }
            catch (JsonException) { }
        }
        return null;
    }

    private static void ReadText(int line, JsonElement root, List<DataSample> samples, RejectionLog rej)
    {
        if (GetString(line, root, "text", required: true, rej, out string? text) && text is not null)
        {
            if (text.Length == 0) rej.Add(line, ReasonEmpty, "'text' is empty");
            else samples.Add(DataSample.FromText(line, text));
        }
    }

    private static void ReadInstruction(int line, JsonElement root, List<DataSample> samples, RejectionLog rej)
    {
        if (!GetString(line, root, "instruction", required: true, rej, out string? instruction) || instruction is null) return;
        if (instruction.Trim().Length == 0) { rej.Add(line, ReasonEmpty, "'instruction' is empty"); return; }
        if (root.TryGetProperty("instances", out var instances) && !root.TryGetProperty("output", out _))
        {
            if (instances.ValueKind != JsonValueKind.Array) { rej.Add(line, ReasonWrongType, $"'instances' is {instances.ValueKind}, expected an array"); return; }
            int k = 0;
            foreach (var inst in instances.EnumerateArray())
            {
                string where = $"instances[{k++}]";
                if (inst.ValueKind != JsonValueKind.Object) { rej.Add(line, ReasonWrongType, $"'{where}' is {inst.ValueKind}, expected an object"); continue; }
                if (!GetString(line, inst, "input", required: false, rej, out string? ii, where)) continue;
                if (!GetString(line, inst, "output", required: true, rej, out string? io, where) || io is null) continue;
                if (io.Trim().Length == 0) { rej.Add(line, ReasonEmpty, $"'{where}.output' is empty"); continue; }
                samples.Add(DataSample.FromInstruction(line, instruction, ii, io));
            }
            if (k == 0) rej.Add(line, ReasonEmpty, "'instances' is empty");
            return;
        }
        if (!GetString(line, root, "input", required: false, rej, out string? input)) return;
        if (!GetString(line, root, "output", required: true, rej, out string? output) || output is null) return;
        if (output.Trim().Length == 0) { rej.Add(line, ReasonEmpty, "'output' is empty"); return; }
        samples.Add(DataSample.FromInstruction(line, instruction, input, output));
    }

    private static void ReadChat(int line, JsonElement root, List<DataSample> samples, RejectionLog rej)
    {
        if (!root.TryGetProperty("messages", out var msgs)) { rej.Add(line, ReasonMissingField, "'messages'"); return; }
        if (msgs.ValueKind != JsonValueKind.Array) { rej.Add(line, ReasonWrongType, $"'messages' is {msgs.ValueKind}, expected an array"); return; }
        var list = new List<ChatMessage>();
        int k = 0;
        foreach (var m in msgs.EnumerateArray())
        {
            string where = $"messages[{k++}]";
            if (m.ValueKind != JsonValueKind.Object) { rej.Add(line, ReasonWrongType, $"'{where}' is {m.ValueKind}, expected an object"); return; }
            if (!GetString(line, m, "role", required: true, rej, out string? role, where) || role is null) return;
            if (!Roles.Contains(role)) { rej.Add(line, ReasonBadRole, $"'{where}.role' is \"{Shorten(role)}\", expected system, user, assistant or tool"); return; }
            if (!GetString(line, m, "content", required: true, rej, out string? content, where) || content is null) return;
            if (role == "assistant" && content.Trim().Length == 0) { rej.Add(line, ReasonEmpty, $"'{where}.content' (assistant) is empty"); return; }
            list.Add(new ChatMessage(role, content));
        }
        if (!list.Any(m => m.Role == "assistant")) { rej.Add(line, ReasonNoAssistant, $"{list.Count} messages, none from the assistant"); return; }
        samples.Add(DataSample.FromChat(line, list));
    }

    /// <summary>Reads a string field. False (and a rejection) when it is required but missing, or not a string;
    /// a missing or null optional field gives true and null.</summary>
    private static bool GetString(int line, JsonElement obj, string name, bool required, RejectionLog rej, out string? value, string? where = null)
    {
        value = null;
        string full = where is null ? name : $"{where}.{name}";
        if (!obj.TryGetProperty(name, out var el) || (el.ValueKind == JsonValueKind.Null && !required))
        {
            if (required) rej.Add(line, ReasonMissingField, $"'{full}'");
            return !required;
        }
        if (el.ValueKind != JsonValueKind.String)
        {
            rej.Add(line, ReasonWrongType, $"'{full}' is {el.ValueKind}, expected a string");
            return false;
        }
        value = el.GetString();
        return true;
    }

    private static string Shorten(string s) => s.Length <= 120 ? s : s[..117] + "...";
}
