namespace EdgeTune.Text.Datasets;

/// <summary>The layout of a training data file.</summary>
public enum DataFormat
{
    /// <summary>Detect: .txt/.md files are plain text; otherwise the first line that parses as a JSON object
    /// decides (<c>messages</c> → Chat, <c>instruction</c> → Instruction, <c>text</c> → JsonlText); a file whose
    /// first non-blank line is not JSON is plain text.</summary>
    Auto,
    /// <summary>A text file: the whole text is tokenized and cut into windows of the sequence length; every token
    /// is trained on.</summary>
    PlainText,
    /// <summary>JSONL, one <c>{"text": "..."}</c> per line; each line is one sample (BOS? + text + EOS), every token
    /// trained on.</summary>
    JsonlText,
    /// <summary>JSONL with <c>instruction</c>, optional <c>input</c> and <c>output</c> (or the self-instruct layout
    /// <c>instruction</c> + <c>instances</c>: [{input, output}], one sample per instance); loss on the response only.</summary>
    Instruction,
    /// <summary>JSONL with <c>messages</c>: [{role, content}], rendered with the chat template; loss on every
    /// assistant turn only.</summary>
    Chat,
}
