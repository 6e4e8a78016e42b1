using System.Text.Json;
using System.Text.Json.Serialization;

namespace EdgeTune.Serving;

// The subset of OpenAI's HTTP API the server speaks (field names are the wire's snake_case via the context below).

internal sealed class ChatCompletionRequest
{
    public string? Model { get; set; }
    public List<WireMessage>? Messages { get; set; }
    public float? Temperature { get; set; }
    public float? TopP { get; set; }
    /// <summary>Not in OpenAI's API; vLLM and llama.cpp's server accept it.</summary>
    public int? TopK { get; set; }
    public int? MaxTokens { get; set; }
    public int? MaxCompletionTokens { get; set; }
    /// <summary>A string or an array of strings.</summary>
    public JsonElement? Stop { get; set; }
    public long? Seed { get; set; }
    public int? N { get; set; }
    public bool? Stream { get; set; }
    public StreamOptions? StreamOptions { get; set; }
}

internal sealed class CompletionRequest
{
    public string? Model { get; set; }
    /// <summary>A string or an array holding one string.</summary>
    public JsonElement? Prompt { get; set; }
    public float? Temperature { get; set; }
    public float? TopP { get; set; }
    public int? TopK { get; set; }
    public int? MaxTokens { get; set; }
    public JsonElement? Stop { get; set; }
    public long? Seed { get; set; }
    public int? N { get; set; }
    public bool? Stream { get; set; }
    public StreamOptions? StreamOptions { get; set; }
}

internal sealed class StreamOptions
{
    public bool? IncludeUsage { get; set; }
}

internal sealed class WireMessage
{
    public string? Role { get; set; }
    /// <summary>A string, an array of content parts ({"type":"text","text":...}), or null.</summary>
    public JsonElement? Content { get; set; }
}

internal sealed class ChatCompletion
{
    public required string Id { get; init; }
    public string Object { get; init; } = "chat.completion";
    public long Created { get; init; }
    public required string Model { get; init; }
    public required List<ChatChoice> Choices { get; init; }
    public WireUsage? Usage { get; init; }
}

internal sealed class ChatChoice
{
    public int Index { get; init; }
    public required AssistantMessage Message { get; init; }
    public string? FinishReason { get; init; }
}

internal sealed class AssistantMessage
{
    public string Role { get; init; } = "assistant";
    public string? Content { get; init; }
}

internal sealed class ChatCompletionChunk
{
    public required string Id { get; init; }
    public string Object { get; init; } = "chat.completion.chunk";
    public long Created { get; init; }
    public required string Model { get; init; }
    public required List<ChunkChoice> Choices { get; init; }
    public WireUsage? Usage { get; init; }
}

internal sealed class ChunkChoice
{
    public int Index { get; init; }
    public required Delta Delta { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string? FinishReason { get; init; }
}

internal sealed class Delta
{
    public string? Role { get; init; }
    public string? Content { get; init; }
}

internal sealed class TextCompletion
{
    public required string Id { get; init; }
    public string Object { get; init; } = "text_completion";
    public long Created { get; init; }
    public required string Model { get; init; }
    public required List<TextChoice> Choices { get; init; }
    public WireUsage? Usage { get; init; }
}

internal sealed class TextChoice
{
    public int Index { get; init; }
    public required string Text { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string? FinishReason { get; init; }
}

internal sealed class WireUsage
{
    public long PromptTokens { get; init; }
    public long CompletionTokens { get; init; }
    public long TotalTokens { get; init; }
}

internal sealed class ModelList
{
    public string Object { get; init; } = "list";
    public required List<ModelCard> Data { get; init; }
}

internal sealed class ModelCard
{
    public required string Id { get; init; }
    public string Object { get; init; } = "model";
    public long Created { get; init; }
    public string OwnedBy { get; init; } = "edgetune";
    /// <summary>The base model an adapter applies to (vLLM's field); null for the base model itself.</summary>
    public string? Parent { get; init; }
}

internal sealed class ErrorEnvelope
{
    public required ErrorBody Error { get; init; }
}

internal sealed class ErrorBody
{
    public required string Message { get; init; }
    public required string Type { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string? Param { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string? Code { get; init; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ChatCompletionRequest))]
[JsonSerializable(typeof(CompletionRequest))]
[JsonSerializable(typeof(ChatCompletion))]
[JsonSerializable(typeof(ChatCompletionChunk))]
[JsonSerializable(typeof(TextCompletion))]
[JsonSerializable(typeof(ModelList))]
[JsonSerializable(typeof(ErrorEnvelope))]
internal sealed partial class OpenAiJsonContext : JsonSerializerContext;
