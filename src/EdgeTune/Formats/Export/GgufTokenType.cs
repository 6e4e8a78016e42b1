namespace EdgeTune.Formats.Export;

/// <summary>llama.cpp's token attribute codes written to <c>tokenizer.ggml.token_type</c>.</summary>
public enum GgufTokenType
{
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}
