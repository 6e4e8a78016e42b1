namespace EdgeTune.Text.Datasets.Internal;

/// <summary>
/// Which <see cref="DataFormat"/> a set of column names is, and how the columns map onto prompt and completion.
/// Preference data (<c>chosen</c>/<c>rejected</c>) is never taken for SFT data.
/// </summary>
internal static class DataLayouts
{
    /// <summary>The layout the columns name, or null (unknown columns, or preference data).</summary>
    public static DataFormat? TryDetect(IReadOnlyCollection<string> columns)
    {
        if (IsPreference(columns)) return null;
        if (columns.Contains("messages")) return DataFormat.Chat;
        if (columns.Contains("conversations")) return DataFormat.ShareGpt;
        if (columns.Contains("instruction")) return DataFormat.Instruction;
        if (columns.Contains("prompt") && columns.Contains("completion")) return DataFormat.PromptCompletion;
        if (columns.Contains("text")) return DataFormat.JsonlText;
        return null;
    }

    /// <summary>The layout the columns name.</summary>
    /// <exception cref="InvalidDataException">preference data, or no known column; the message names the file and the columns.</exception>
    public static DataFormat Detect(IReadOnlyCollection<string> columns, string source)
    {
        if (IsPreference(columns))
            throw new InvalidDataException(
                $"{source}: preference data (columns {string.Join(", ", columns.Where(c => c is "prompt" or "chosen" or "rejected"))}) is for DPO/ORPO-style training; " +
                "EdgeTune fine-tunes with SFT only: give text, instruction/input/output, messages, conversations or prompt/completion columns");
        return TryDetect(columns) ?? throw new InvalidDataException(
            $"{source}: no known data columns (found {Describe(columns)}); expected text, instruction/input/output, messages, conversations or prompt/completion");
    }

    /// <summary>True for DPO-style rows: a <c>chosen</c> or <c>rejected</c> column.</summary>
    public static bool IsPreference(IReadOnlyCollection<string> columns) => columns.Contains("chosen") || columns.Contains("rejected");

    /// <summary>"alpaca: instruction+input -> prompt, output -> completion" and the like, for the data report.</summary>
    public static string Mapping(DataFormat format, IReadOnlyCollection<string>? columns = null) => format switch
    {
        DataFormat.PlainText => "plain text: the whole file -> trained text",
        DataFormat.JsonlText => "text: text -> trained text",
        DataFormat.Instruction => columns is not null && columns.Contains("instances") && !columns.Contains("output")
            ? "alpaca (self-instruct): instruction+instances[].input -> prompt, instances[].output -> completion"
            : columns is not null && !columns.Contains("input")
                ? "alpaca: instruction -> prompt, output -> completion"
                : "alpaca: instruction+input -> prompt, output -> completion",
        DataFormat.Chat => "messages: role/content turns; assistant turns -> completion, system/user/tool turns -> prompt",
        DataFormat.ShareGpt => "sharegpt: conversations from/value turns (human -> user, gpt -> assistant); gpt turns -> completion, others -> prompt",
        DataFormat.PromptCompletion => "prompt-completion: prompt -> prompt, completion -> completion",
        _ => format.ToString(),
    };

    private static string Describe(IReadOnlyCollection<string> columns) =>
        columns.Count == 0 ? "no columns" : string.Join(", ", columns.Take(12)) + (columns.Count > 12 ? ", ..." : "");
}
