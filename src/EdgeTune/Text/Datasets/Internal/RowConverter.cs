using System.Text.Json;
using static EdgeTune.Text.Datasets.JsonlReader;

namespace EdgeTune.Text.Datasets.Internal;

/// <summary>
/// Turns one row (a JSON object: a JSONL line, an element of a JSON array, or a CSV/Parquet record converted to JSON)
/// into <see cref="DataSample"/>s of a layout. A bad row is rejected with its reason; it never throws.
/// </summary>
internal static class RowConverter
{
    private static readonly HashSet<string> Roles = new(StringComparer.Ordinal) { "system", "user", "assistant", "tool" };

    /// <summary>ShareGPT's <c>from</c> values and the chat roles they stand for.</summary>
    private static readonly Dictionary<string, string> ShareGptRoles = new(StringComparer.OrdinalIgnoreCase)
    {
        ["system"] = "system", ["human"] = "user", ["user"] = "user", ["gpt"] = "assistant", ["assistant"] = "assistant",
        ["tool"] = "tool", ["observation"] = "tool", ["function_call"] = "assistant",
    };

    public static void Convert(int line, JsonElement root, DataFormat format, List<DataSample> samples, RejectionLog rej)
    {
        if (root.ValueKind != JsonValueKind.Object) { rej.Add(line, ReasonNotObject, $"found {root.ValueKind}"); return; }
        switch (format)
        {
            case DataFormat.JsonlText: ReadText(line, root, samples, rej); break;
            case DataFormat.Instruction: ReadInstruction(line, root, samples, rej); break;
            case DataFormat.Chat: ReadChat(line, root, samples, rej); break;
            case DataFormat.ShareGpt: ReadShareGpt(line, root, samples, rej); break;
            case DataFormat.PromptCompletion: ReadPromptCompletion(line, root, samples, rej); break;
            default: throw new ArgumentOutOfRangeException(nameof(format), format, "not a row layout");
        }
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
        if (root.TryGetProperty("instances", out var instances) && instances.ValueKind != JsonValueKind.Null && !root.TryGetProperty("output", out _))
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
        if (ReadMessages(line, msgs, "messages", "role", "content", null, rej) is { } list) AddChat(line, list, samples, rej);
    }

    private static void ReadShareGpt(int line, JsonElement root, List<DataSample> samples, RejectionLog rej)
    {
        if (!root.TryGetProperty("conversations", out var turns)) { rej.Add(line, ReasonMissingField, "'conversations'"); return; }
        if (ReadMessages(line, turns, "conversations", "from", "value", ShareGptRoles, rej) is { } list) AddChat(line, list, samples, rej);
    }

    /// <summary>Plain strings train as prompt + completion; message lists (TRL's conversational form) as a chat of the
    /// prompt's messages followed by the completion's.</summary>
    private static void ReadPromptCompletion(int line, JsonElement root, List<DataSample> samples, RejectionLog rej)
    {
        if (!root.TryGetProperty("prompt", out var p)) { rej.Add(line, ReasonMissingField, "'prompt'"); return; }
        if (!root.TryGetProperty("completion", out var c)) { rej.Add(line, ReasonMissingField, "'completion'"); return; }
        if (p.ValueKind == JsonValueKind.Array && c.ValueKind == JsonValueKind.Array)
        {
            var prompt = ReadMessages(line, p, "prompt", "role", "content", null, rej);
            if (prompt is null) return;
            var completion = ReadMessages(line, c, "completion", "role", "content", null, rej);
            if (completion is null) return;
            AddChat(line, [.. prompt, .. completion], samples, rej);
            return;
        }
        if (!GetString(line, root, "prompt", required: true, rej, out string? ps) || ps is null) return;
        if (!GetString(line, root, "completion", required: true, rej, out string? cs) || cs is null) return;
        if (cs.Trim().Length == 0) { rej.Add(line, ReasonEmpty, "'completion' is empty"); return; }
        samples.Add(DataSample.FromPromptCompletion(line, ps, cs));
    }

    private static void AddChat(int line, List<ChatMessage> list, List<DataSample> samples, RejectionLog rej)
    {
        if (!list.Any(m => m.Role == "assistant")) { rej.Add(line, ReasonNoAssistant, $"{list.Count} messages, none from the assistant"); return; }
        samples.Add(DataSample.FromChat(line, list));
    }

    /// <summary>A list of turns; null (and a rejection) when the list or a turn is malformed. With
    /// <paramref name="roleNames"/> the role field's values are mapped (ShareGPT), else they must be chat roles.</summary>
    private static List<ChatMessage>? ReadMessages(int line, JsonElement msgs, string field, string roleField, string contentField,
        Dictionary<string, string>? roleNames, RejectionLog rej)
    {
        if (msgs.ValueKind != JsonValueKind.Array) { rej.Add(line, ReasonWrongType, $"'{field}' is {msgs.ValueKind}, expected an array"); return null; }
        var list = new List<ChatMessage>();
        int k = 0;
        foreach (var m in msgs.EnumerateArray())
        {
            string where = $"{field}[{k++}]";
            if (m.ValueKind != JsonValueKind.Object) { rej.Add(line, ReasonWrongType, $"'{where}' is {m.ValueKind}, expected an object"); return null; }
            if (!GetString(line, m, roleField, required: true, rej, out string? given, where) || given is null) return null;
            string? role = roleNames is null ? (Roles.Contains(given) ? given : null) : roleNames.GetValueOrDefault(given);
            if (role is null)
            {
                string expected = roleNames is null ? "system, user, assistant or tool" : "system, human, gpt (or user, assistant, tool)";
                rej.Add(line, ReasonBadRole, $"'{where}.{roleField}' is \"{Shorten(given)}\", expected {expected}");
                return null;
            }
            if (!GetString(line, m, contentField, required: true, rej, out string? content, where) || content is null) return null;
            if (role == "assistant" && content.Trim().Length == 0) { rej.Add(line, ReasonEmpty, $"'{where}.{contentField}' (assistant) is empty"); return null; }
            list.Add(new ChatMessage(role, content));
        }
        return list;
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

    internal static string Shorten(string s) => s.Length <= 120 ? s : s[..117] + "...";
}
