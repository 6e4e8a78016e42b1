namespace EdgeTune.Text.Datasets;

/// <summary>
/// The row layout of a training data file, named by its columns. The same layouts are read from JSONL, a JSON array
/// (.json), CSV (.csv/.tsv, header row) and Parquet (.parquet) files; see <see cref="DataFileKind"/>.
/// </summary>
public enum DataFormat
{
    /// <summary>Detect: .txt/.md files are plain text; other files are detected by their columns (the keys of the first
    /// JSON object, the CSV header, the Parquet schema): <c>messages</c> → Chat, <c>conversations</c> → ShareGpt,
    /// <c>instruction</c> → Instruction, <c>prompt</c>+<c>completion</c> → PromptCompletion, <c>text</c> → JsonlText.
    /// Preference data (<c>chosen</c>/<c>rejected</c>), unknown columns and binary files are refused.</summary>
    Auto,
    /// <summary>A text file: the whole text is tokenized and cut into windows of the sequence length; every token
    /// is trained on.</summary>
    PlainText,
    /// <summary>A <c>text</c> column (JSONL <c>{"text": "..."}</c>); each row is one sample (BOS? + text + EOS), every
    /// token trained on.</summary>
    JsonlText,
    /// <summary>Alpaca: <c>instruction</c>, optional <c>input</c> and <c>output</c> (or the self-instruct layout
    /// <c>instruction</c> + <c>instances</c>: [{input, output}], one sample per instance); loss on the response only.</summary>
    Instruction,
    /// <summary><c>messages</c>: [{role, content}] (roles system, user, assistant, tool), rendered with the chat
    /// template; loss on every assistant turn only.</summary>
    Chat,
    /// <summary>ShareGPT: <c>conversations</c>: [{from, value}] with from = system, human/user, gpt/assistant (also
    /// tool, function_call/observation); read as <see cref="Chat"/> with the roles renamed.</summary>
    ShareGpt,
    /// <summary>TRL's prompt-completion layout: <c>prompt</c> and <c>completion</c> strings, trained as
    /// [BOS] + prompt + completion + [EOS] with the loss on the completion (and EOS) only; when both are message
    /// lists ([{role, content}]) the row is a conversation, as <see cref="Chat"/>.</summary>
    PromptCompletion,
}
