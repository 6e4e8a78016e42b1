namespace EdgeTune.Text.Datasets;

/// <summary>
/// One parsed row of a data file, before tokenization: exactly one of <see cref="Text"/>,
/// (<see cref="Instruction"/>, <see cref="Input"/>, <see cref="Output"/>), <see cref="Messages"/> or
/// (<see cref="Prompt"/>, <see cref="Completion"/>) is set. <see cref="Line"/> is the 1-based row number in the file:
/// the line of a JSONL or CSV file, the element of a JSON array, the row of a Parquet file.
/// </summary>
public sealed record DataSample(int Line, string? Text = null, string? Instruction = null, string? Input = null,
    string? Output = null, IReadOnlyList<ChatMessage>? Messages = null, string? Prompt = null, string? Completion = null)
{
    public static DataSample FromText(int line, string text) => new(line, Text: text);
    public static DataSample FromInstruction(int line, string instruction, string? input, string output) =>
        new(line, Instruction: instruction, Input: input, Output: output);
    public static DataSample FromChat(int line, IReadOnlyList<ChatMessage> messages) => new(line, Messages: messages);
    public static DataSample FromPromptCompletion(int line, string prompt, string completion) => new(line, Prompt: prompt, Completion: completion);
}
