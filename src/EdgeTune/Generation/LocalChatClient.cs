using System.Runtime.CompilerServices;
using System.Text;
using EdgeTune.Models;
using EdgeTune.Text;
using Microsoft.Extensions.AI;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;
using TemplateMessage = EdgeTune.Text.ChatMessage;

namespace EdgeTune.Generation;

/// <summary>Settings of a <see cref="LocalChatClient"/>.</summary>
/// <param name="ModelId">The name of the base model (what <see cref="ChatOptions.ModelId"/> selects it by, and what
/// responses report).</param>
/// <param name="Template">The chat template; null: ChatML with the tokenizer's BOS/EOS text.</param>
/// <param name="StopIds">Ids that end a response (null: the tokenizer's EOS).</param>
/// <param name="MaxOutputTokens">Tokens per response when <see cref="ChatOptions.MaxOutputTokens"/> is not set.</param>
/// <param name="Sampling">Defaults for the sampling fields a request leaves unset.</param>
public sealed record LocalChatClientOptions(
    string ModelId = "edgetune",
    ChatTemplate? Template = null,
    IReadOnlySet<int>? StopIds = null,
    int MaxOutputTokens = 256,
    SamplingOptions? Sampling = null);

/// <summary>
/// <see cref="IChatClient"/> over a local model: the conversation is rendered with the model's chat template, tokenized,
/// and generated token by token (<see cref="TokenGenerator"/>), streamed as text through a <see cref="StreamingDecoder"/>.
/// <see cref="ChatOptions"/> maps to sampling (Temperature, TopP, TopK, Seed), MaxOutputTokens, StopSequences (text
/// stops; never emitted) and ModelId (the base model's id, or the name of one of the model's adapters). Responses carry
/// <see cref="UsageDetails"/> (prompt and generated token counts; the end-of-sequence token counts as generated) and a
/// finish reason: <see cref="ChatFinishReason.Stop"/> for end-of-sequence or a stop sequence,
/// <see cref="ChatFinishReason.Length"/> for the token limit or a full context. Only the text of messages is used.
/// Cancellation is checked between tokens and throws <see cref="OperationCanceledException"/>.
/// </summary>
/// <remarks>Thread-safe: every call has its own KV cache and sampler; the forward passes of concurrent calls are
/// serialized by the <see cref="AdapterSwitchingModel"/> (so they interleave token by token and take turns on the CPU).
/// A model must be run through one <see cref="AdapterSwitchingModel"/> only. The tokenizer is only read.</remarks>
public sealed class LocalChatClient : IChatClient
{
    private const string ChatIdPrefix = "chatcmpl-";
    private const string CompletionIdPrefix = "cmpl-";
    private readonly ITokenizer _tokenizer;
    private readonly ChatTemplate _template;
    private readonly IReadOnlySet<int> _stopIds;
    private readonly ChatClientMetadata _metadata;

    public LocalChatClient(ICausalLM model, ITokenizer tokenizer, LocalChatClientOptions? options = null)
        : this(new AdapterSwitchingModel(model), tokenizer, options)
    {
    }

    public LocalChatClient(AdapterSwitchingModel model, ITokenizer tokenizer, LocalChatClientOptions? options = null)
    {
        Model = model ?? throw new ArgumentNullException(nameof(model));
        _tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        Options = options ?? new LocalChatClientOptions();
        if (Options.MaxOutputTokens <= 0) throw new ArgumentOutOfRangeException(nameof(options), Options.MaxOutputTokens, "MaxOutputTokens must be positive");
        (Options.Sampling ?? new SamplingOptions()).Validate();
        if (Model.HasAdapter(Options.ModelId)) throw new ArgumentException($"the model id '{Options.ModelId}' is also an adapter name", nameof(options));
        _template = Options.Template ?? new ChatTemplate(ChatTemplates.ChatML, TokenText(tokenizer, tokenizer.BosId), TokenText(tokenizer, tokenizer.EosId));
        _stopIds = Options.StopIds ?? (tokenizer.EosId is int eos ? new HashSet<int> { eos } : new HashSet<int>());
        _metadata = new ChatClientMetadata("edgetune", null, Options.ModelId);
    }

    public AdapterSwitchingModel Model { get; }

    public LocalChatClientOptions Options { get; }

    /// <summary>The ids requests may name: the base model's, then every adapter's.</summary>
    public IReadOnlyList<string> ModelIds => [Options.ModelId, .. Model.AdapterNames];

    /// <summary>Whether <paramref name="modelId"/> names the base model or an adapter.</summary>
    public bool IsKnownModel(string? modelId) => modelId is null || modelId == Options.ModelId || Model.HasAdapter(modelId);

    /// <summary>The prompt ids of a conversation: the template rendered with the generation prompt, then tokenized with
    /// special-token text parsed (the template writes BOS itself where the model wants it).</summary>
    public int[] EncodeChat(IEnumerable<AiChatMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var turns = messages.Select(m => new TemplateMessage(m.Role.Value, m.Text)).ToList();
        return _template.Encode(_tokenizer, turns, addGenerationPrompt: true);
    }

    /// <summary>The prompt ids of raw text (no template): BOS in front when the tokenizer adds one by default.</summary>
    public int[] EncodeText(string prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        return _tokenizer.Encode(prompt, addBos: _tokenizer.AddBosByDefault && _tokenizer.BosId is not null);
    }

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<AiChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        await CollectAsync(EncodeChat(messages), options, ChatIdPrefix, cancellationToken).ConfigureAwait(false);

    public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<AiChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        StreamAsync(EncodeChat(messages), options, ChatIdPrefix, cancellationToken);

    /// <summary>Continues raw text (no chat template), as OpenAI's legacy completions do.</summary>
    public Task<ChatResponse> GetCompletionAsync(string prompt, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        CollectAsync(EncodeText(prompt), options, CompletionIdPrefix, cancellationToken);

    /// <summary>Streams the continuation of raw text (no chat template).</summary>
    public IAsyncEnumerable<ChatResponseUpdate> GetStreamingCompletionAsync(string prompt, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        StreamAsync(EncodeText(prompt), options, CompletionIdPrefix, cancellationToken);

    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return _metadata;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <summary>The model, tokenizer and adapters belong to the caller; nothing to release.</summary>
    public void Dispose() { }

    private async Task<ChatResponse> CollectAsync(int[] prompt, ChatOptions? options, string idPrefix, CancellationToken cancellationToken)
    {
        var text = new StringBuilder();
        ChatResponseUpdate? last = null;
        UsageDetails? usage = null;
        await foreach (var update in StreamAsync(prompt, options, idPrefix, cancellationToken).ConfigureAwait(false))
        {
            text.Append(update.Text);
            usage = update.Contents.OfType<UsageContent>().FirstOrDefault()?.Details ?? usage;
            last = update;
        }
        return new ChatResponse(new AiChatMessage(ChatRole.Assistant, text.ToString()) { MessageId = last?.MessageId })
        {
            ResponseId = last?.ResponseId,
            ModelId = last?.ModelId,
            CreatedAt = last?.CreatedAt,
            FinishReason = last?.FinishReason,
            Usage = usage,
        };
    }

    /// <summary>Yields one update per piece of text, then one with the finish reason and a <see cref="UsageContent"/>.</summary>
    private async IAsyncEnumerable<ChatResponseUpdate> StreamAsync(int[] prompt, ChatOptions? options, string idPrefix,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string modelId = options?.ModelId ?? Options.ModelId;
        var model = modelId == Options.ModelId ? Model.Select(null) : Model.Select(modelId);
        var sampler = new Sampler(SamplingFor(options));
        int maxNew = options?.MaxOutputTokens ?? Options.MaxOutputTokens;
        if (maxNew <= 0) throw new ArgumentOutOfRangeException(nameof(options), maxNew, "MaxOutputTokens must be positive");
        if (prompt.Length == 0)
            prompt = _tokenizer.BosId is int bos ? [bos] : throw new ArgumentException("the prompt is empty and the tokenizer has no BOS to start from");
        if (prompt.Length >= model.MaxPositions)
            throw new ArgumentException($"the prompt has {prompt.Length} tokens; the model holds {model.MaxPositions} positions in all");
        maxNew = Math.Min(maxNew, model.MaxPositions - prompt.Length);

        string responseId = idPrefix + Guid.NewGuid().ToString("N");
        var created = DateTimeOffset.UtcNow;
        ChatResponseUpdate Update(string? text) => new(ChatRole.Assistant, text)
        {
            ResponseId = responseId, MessageId = responseId, ModelId = modelId, CreatedAt = created,
        };

        var decoder = _tokenizer.CreateStreamingDecoder(skipSpecial: true);
        var stops = new StopStringFilter(options?.StopSequences is { Count: > 0 } s ? [.. s] : []);
        var generator = new TokenGenerator(model);
        int produced = 0;
        var finish = ChatFinishReason.Length;
        bool stoppedByText = false;
        await Task.Yield(); // the prefill runs off the caller's synchronous path
        foreach (int id in generator.Generate(prompt, maxNew, sampler, _stopIds, cancellationToken: cancellationToken))
        {
            cancellationToken.ThrowIfCancellationRequested();
            produced++;
            if (_stopIds.Contains(id)) { finish = ChatFinishReason.Stop; break; }
            string piece = stops.Push(decoder.Push(id), out stoppedByText);
            if (piece.Length > 0) yield return Update(piece);
            if (stoppedByText) { finish = ChatFinishReason.Stop; break; }
            await Task.Yield();
        }
        cancellationToken.ThrowIfCancellationRequested();
        if (!stoppedByText)
        {
            // release bytes of an unfinished character and text held back as a possible stop-sequence start
            string tail = stops.Push(decoder.Flush(), out stoppedByText);
            if (stoppedByText) finish = ChatFinishReason.Stop;
            else tail += stops.Flush();
            if (tail.Length > 0) yield return Update(tail);
        }
        var end = Update(null);
        end.Role = ChatRole.Assistant;
        end.FinishReason = finish;
        end.Contents.Add(new UsageContent(new UsageDetails
        {
            InputTokenCount = prompt.Length,
            OutputTokenCount = produced,
            TotalTokenCount = prompt.Length + produced,
        }));
        yield return end;
    }

    private SamplingOptions SamplingFor(ChatOptions? options)
    {
        var d = Options.Sampling ?? new SamplingOptions();
        if (options is null) return d;
        var s = d with
        {
            Temperature = options.Temperature ?? d.Temperature,
            TopP = options.TopP ?? d.TopP,
            TopK = options.TopK ?? d.TopK,
            Seed = options.Seed is long seed ? unchecked((ulong)seed) : d.Seed,
        };
        s.Validate();
        return s;
    }

    private static string? TokenText(ITokenizer tokenizer, int? id) => id is int i ? tokenizer.IdToToken(i) : null;
}
