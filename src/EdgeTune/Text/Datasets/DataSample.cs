namespace EdgeTune.Text.Datasets;

/// <summary>
/// One parsed row of a JSONL data file, before tokenization: exactly one of <see cref="Text"/>,
/// (<see cref="Instruction"/>, <see cref="Input"/>, <see cref="Output"/>) or <see cref="Messages"/> is set.
/// <see cref="Line"/> is the 1-based line number in the file.
/// </summary>
public sealed record DataSample(int Line, string? Text = null, string? Instruction = null, string? Input = null,
    string? Output = null, IReadOnlyList<ChatMessage>? Messages = null)
{
    public static DataSample FromText(int line, string text) => new(line, Text: text);
    public static DataSample FromInstruction(int line, string instruction, string? input, string output) =>
        new(line, Instruction: instruction, Input: input, Output: output);
    public static DataSample FromChat(int line, IReadOnlyList<ChatMessage> messages) => new(line, Messages: messages);
}
