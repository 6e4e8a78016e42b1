using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using EdgeTune.Generation;
using EdgeTune.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.AI;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace EdgeTune.Serving;

/// <summary>The handlers of the OpenAI-compatible routes over one <see cref="LocalChatClient"/>.</summary>
internal sealed class OpenAiEndpoints(LocalChatClient client, OpenAiServerOptions options, AdmissionGate gate)
{
    private static readonly byte[] DataPrefix = "data: "u8.ToArray();
    private static readonly byte[] EventEnd = "\n\n"u8.ToArray();
    private static readonly byte[] Done = "data: [DONE]\n\n"u8.ToArray();
    private readonly long _created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
    private readonly byte[]? _apiKey = options.ApiKey is { } k ? Encoding.UTF8.GetBytes("Bearer " + k) : null;

    /// <summary>Middleware: with an API key configured, a request without the matching bearer token gets 401.</summary>
    public async Task AuthorizeAsync(HttpContext ctx, RequestDelegate next)
    {
        if (_apiKey is not null)
        {
            byte[] given = Encoding.UTF8.GetBytes(ctx.Request.Headers.Authorization.ToString());
            if (!CryptographicOperations.FixedTimeEquals(given, _apiKey))
            {
                ctx.Response.Headers.WWWAuthenticate = "Bearer";
                await ErrorAsync(ctx, StatusCodes.Status401Unauthorized, "Missing or incorrect API key: send 'Authorization: Bearer <key>'.",
                    "invalid_request_error", "invalid_api_key").ConfigureAwait(false);
                return;
            }
        }
        await next(ctx).ConfigureAwait(false);
    }

    public Task ModelsAsync(HttpContext ctx)
    {
        string baseId = client.Options.ModelId;
        var cards = new List<ModelCard> { new() { Id = baseId, Created = _created } };
        cards.AddRange(client.Model.AdapterNames.Select(a => new ModelCard { Id = a, Created = _created, Parent = baseId }));
        return WriteJsonAsync(ctx, StatusCodes.Status200OK, new ModelList { Data = cards }, OpenAiJsonContext.Default.ModelList);
    }

    public async Task ChatAsync(HttpContext ctx)
    {
        var req = await ReadAsync(ctx, OpenAiJsonContext.Default.ChatCompletionRequest).ConfigureAwait(false);
        if (req is null) return;
        if (req.Messages is not { Count: > 0 })
        {
            await ErrorAsync(ctx, 400, "'messages' must be a non-empty array.", "invalid_request_error", null, "messages").ConfigureAwait(false);
            return;
        }
        var messages = new List<AiChatMessage>();
        foreach (var m in req.Messages)
        {
            if (string.IsNullOrEmpty(m.Role) || ContentText(m.Content) is not { } text)
            {
                await ErrorAsync(ctx, 400, "every message needs a 'role' and a 'content' that is a string or an array of text parts.",
                    "invalid_request_error", null, "messages").ConfigureAwait(false);
                return;
            }
            messages.Add(new AiChatMessage(new ChatRole(m.Role == "developer" ? "system" : m.Role), text));
        }
        var chatOptions = await OptionsAsync(ctx, req.Model, req.Temperature, req.TopP, req.TopK, req.MaxCompletionTokens ?? req.MaxTokens,
            req.Stop, req.Seed, req.N).ConfigureAwait(false);
        if (chatOptions is null) return;
        string model = chatOptions.ModelId!;
        await ServeAsync(ctx, ct => client.GetStreamingResponseAsync(messages, chatOptions, ct), req.Stream == true, req.StreamOptions?.IncludeUsage == true,
            whole: (id, text, finish, usage) => WriteJsonAsync(ctx, 200, new ChatCompletion
            {
                Id = id, Created = _created, Model = model, Usage = usage,
                Choices = [new ChatChoice { Message = new AssistantMessage { Content = text }, FinishReason = finish }],
            }, OpenAiJsonContext.Default.ChatCompletion),
            chunk: (id, text, finish, usage, first) => SendEventAsync(ctx, new ChatCompletionChunk
            {
                Id = id, Created = _created, Model = model, Usage = usage,
                Choices = usage is not null ? [] : [new ChunkChoice { Delta = new Delta { Role = first ? "assistant" : null, Content = text }, FinishReason = finish }],
            }, OpenAiJsonContext.Default.ChatCompletionChunk),
            sendsRoleFirst: true).ConfigureAwait(false);
    }

    public async Task CompletionsAsync(HttpContext ctx)
    {
        var req = await ReadAsync(ctx, OpenAiJsonContext.Default.CompletionRequest).ConfigureAwait(false);
        if (req is null) return;
        string? prompt = req.Prompt switch
        {
            { ValueKind: JsonValueKind.String } p => p.GetString(),
            { ValueKind: JsonValueKind.Array } p when p.GetArrayLength() == 1 && p[0].ValueKind == JsonValueKind.String => p[0].GetString(),
            _ => null,
        };
        if (prompt is null)
        {
            await ErrorAsync(ctx, 400, "'prompt' must be a string (or an array of one string).", "invalid_request_error", null, "prompt").ConfigureAwait(false);
            return;
        }
        var chatOptions = await OptionsAsync(ctx, req.Model, req.Temperature, req.TopP, req.TopK, req.MaxTokens, req.Stop, req.Seed, req.N).ConfigureAwait(false);
        if (chatOptions is null) return;
        string model = chatOptions.ModelId!;
        await ServeAsync(ctx, ct => client.GetStreamingCompletionAsync(prompt, chatOptions, ct), req.Stream == true, req.StreamOptions?.IncludeUsage == true,
            whole: (id, text, finish, usage) => WriteJsonAsync(ctx, 200, new TextCompletion
            {
                Id = id, Created = _created, Model = model, Usage = usage,
                Choices = [new TextChoice { Text = text, FinishReason = finish }],
            }, OpenAiJsonContext.Default.TextCompletion),
            chunk: (id, text, finish, usage, _) => SendEventAsync(ctx, new TextCompletion
            {
                Id = id, Created = _created, Model = model, Usage = usage,
                Choices = usage is not null ? [] : [new TextChoice { Text = text ?? "", FinishReason = finish }],
            }, OpenAiJsonContext.Default.TextCompletion),
            sendsRoleFirst: false).ConfigureAwait(false);
    }

    private delegate Task WholeWriter(string id, string text, string? finish, WireUsage? usage);

    private delegate Task ChunkWriter(string id, string? text, string? finish, WireUsage? usage, bool first);

    /// <summary>Admits the request, runs the generation and writes it whole or as server-sent events. Errors found before
    /// the first byte is sent become OpenAI error responses; later ones an error event.</summary>
    private async Task ServeAsync(HttpContext ctx, Func<CancellationToken, IAsyncEnumerable<ChatResponseUpdate>> start, bool stream, bool includeUsage,
        WholeWriter whole, ChunkWriter chunk, bool sendsRoleFirst)
    {
        var ct = ctx.RequestAborted;
        using var lease = await gate.TryEnterAsync(ct).ConfigureAwait(false);
        if (lease is null)
        {
            ctx.Response.Headers.RetryAfter = "1";
            await ErrorAsync(ctx, StatusCodes.Status429TooManyRequests,
                $"The server is busy ({options.MaxConcurrency} running, {options.MaxQueue} queued); retry later.", "rate_limit_error", "rate_limit_exceeded").ConfigureAwait(false);
            return;
        }
        if (options.AfterAdmission is { } hook) await hook(ct).ConfigureAwait(false);

        IAsyncEnumerator<ChatResponseUpdate>? updates = null;
        try
        {
            bool any;
            try
            {
                updates = start(ct).GetAsyncEnumerator(ct);
                any = await updates.MoveNextAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is ArgumentException or ChatTemplateException)
            {
                await ErrorAsync(ctx, 400, e.Message, "invalid_request_error", null).ConfigureAwait(false);
                return;
            }
            string id = (any ? updates.Current.ResponseId : null) ?? "cmpl-" + Guid.NewGuid().ToString("N");
            var text = new StringBuilder();
            string? finish = null;
            WireUsage? usage = null;
            if (stream)
            {
                ctx.Response.StatusCode = 200;
                ctx.Response.ContentType = "text/event-stream";
                ctx.Response.Headers.CacheControl = "no-cache";
                ctx.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
                if (sendsRoleFirst) await chunk(id, "", null, null, first: true).ConfigureAwait(false);
            }
            try
            {
                while (any)
                {
                    var u = updates.Current;
                    string piece = u.Text;
                    if (u.FinishReason is { } f) finish = f.Value;
                    if (u.Contents.OfType<UsageContent>().FirstOrDefault() is { } uc) usage = Usage(uc.Details);
                    if (stream)
                    {
                        if (piece.Length > 0 || finish is not null) await chunk(id, piece, finish, null, first: false).ConfigureAwait(false);
                    }
                    else text.Append(piece);
                    any = await updates.MoveNextAsync().ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException && !ct.IsCancellationRequested)
            {
                // the generation failed after it started: an error event mid-stream, else a 500 in OpenAI's shape
                if (stream)
                    await SendEventAsync(ctx, new ErrorEnvelope { Error = new ErrorBody { Message = e.Message, Type = "server_error" } },
                        OpenAiJsonContext.Default.ErrorEnvelope).ConfigureAwait(false);
                else
                    await ErrorAsync(ctx, StatusCodes.Status500InternalServerError, e.Message, "server_error", null).ConfigureAwait(false);
                return;
            }
            if (!stream)
            {
                await whole(id, text.ToString(), finish, usage).ConfigureAwait(false);
                return;
            }
            if (includeUsage && usage is not null) await chunk(id, null, null, usage, first: false).ConfigureAwait(false);
            await ctx.Response.Body.WriteAsync(Done, ct).ConfigureAwait(false);
            await ctx.Response.Body.FlushAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // the client went away: nothing left to answer
        }
        finally
        {
            if (updates is not null) await updates.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>The sampling and stop settings of a request, or null after answering 400/404.</summary>
    private async Task<ChatOptions?> OptionsAsync(HttpContext ctx, string? model, float? temperature, float? topP, int? topK, int? maxTokens,
        JsonElement? stop, long? seed, int? n)
    {
        model ??= client.Options.ModelId;
        if (!client.IsKnownModel(model))
        {
            await ErrorAsync(ctx, 404, $"The model '{model}' does not exist; GET /v1/models lists the base model and its adapters.",
                "invalid_request_error", "model_not_found", "model").ConfigureAwait(false);
            return null;
        }
        if (n is not (null or 1))
        {
            await ErrorAsync(ctx, 400, "Only n = 1 is supported.", "invalid_request_error", null, "n").ConfigureAwait(false);
            return null;
        }
        List<string>? stops = stop switch
        {
            null or { ValueKind: JsonValueKind.Null } => [],
            { ValueKind: JsonValueKind.String } s => [s.GetString()!],
            { ValueKind: JsonValueKind.Array } a when a.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String) =>
                [.. a.EnumerateArray().Select(e => e.GetString()!)],
            _ => null,
        };
        if (stops is null)
        {
            await ErrorAsync(ctx, 400, "'stop' must be a string or an array of strings.", "invalid_request_error", null, "stop").ConfigureAwait(false);
            return null;
        }
        return new ChatOptions
        {
            ModelId = model, Temperature = temperature, TopP = topP, TopK = topK, MaxOutputTokens = maxTokens,
            StopSequences = stops.Count > 0 ? stops : null, Seed = seed,
        };
    }

    /// <summary>A message's text: a string, or the text parts of an array joined; null when it is neither.</summary>
    private static string? ContentText(JsonElement? content)
    {
        switch (content)
        {
            case null or { ValueKind: JsonValueKind.Null }: return "";
            case { ValueKind: JsonValueKind.String } s: return s.GetString();
            case { ValueKind: JsonValueKind.Array } parts:
                var sb = new StringBuilder();
                foreach (var p in parts.EnumerateArray())
                {
                    if (p.ValueKind != JsonValueKind.Object || !p.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String) return null;
                    if (type.GetString() != "text") continue; // images and other parts are not read
                    if (!p.TryGetProperty("text", out var t) || t.ValueKind != JsonValueKind.String) return null;
                    sb.Append(t.GetString());
                }
                return sb.ToString();
            default: return null;
        }
    }

    private static WireUsage Usage(UsageDetails d) => new()
    {
        PromptTokens = d.InputTokenCount ?? 0,
        CompletionTokens = d.OutputTokenCount ?? 0,
        TotalTokens = d.TotalTokenCount ?? 0,
    };

    /// <summary>The request body as <typeparamref name="T"/>, or null after answering 400 (bad JSON) or 413 (too large).</summary>
    private async Task<T?> ReadAsync<T>(HttpContext ctx, JsonTypeInfo<T> info) where T : class
    {
        if (ctx.Request.ContentLength > options.MaxRequestBodyBytes)
        {
            await TooLargeAsync(ctx).ConfigureAwait(false);
            return null;
        }
        try
        {
            var value = await JsonSerializer.DeserializeAsync(ctx.Request.Body, info, ctx.RequestAborted).ConfigureAwait(false);
            if (value is null) await ErrorAsync(ctx, 400, "The request body must be a JSON object.", "invalid_request_error", null).ConfigureAwait(false);
            return value;
        }
        catch (JsonException e)
        {
            await ErrorAsync(ctx, 400, $"The request body is not valid JSON for this route: {e.Message}", "invalid_request_error", null).ConfigureAwait(false);
            return null;
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            await TooLargeAsync(ctx).ConfigureAwait(false);
            return null;
        }
    }

    private Task TooLargeAsync(HttpContext ctx) =>
        ErrorAsync(ctx, StatusCodes.Status413PayloadTooLarge, $"The request body exceeds {options.MaxRequestBodyBytes} bytes.", "invalid_request_error", "request_too_large");

    internal static Task ErrorAsync(HttpContext ctx, int status, string message, string type, string? code, string? param = null) =>
        WriteJsonAsync(ctx, status, new ErrorEnvelope { Error = new ErrorBody { Message = message, Type = type, Code = code, Param = param } },
            OpenAiJsonContext.Default.ErrorEnvelope);

    private static async Task WriteJsonAsync<T>(HttpContext ctx, int status, T value, JsonTypeInfo<T> info)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        await ctx.Response.Body.WriteAsync(JsonSerializer.SerializeToUtf8Bytes(value, info), ctx.RequestAborted).ConfigureAwait(false);
    }

    private static async Task SendEventAsync<T>(HttpContext ctx, T value, JsonTypeInfo<T> info)
    {
        var body = ctx.Response.Body;
        var ct = ctx.RequestAborted;
        await body.WriteAsync(DataPrefix, ct).ConfigureAwait(false);
        await body.WriteAsync(JsonSerializer.SerializeToUtf8Bytes(value, info), ct).ConfigureAwait(false);
        await body.WriteAsync(EventEnd, ct).ConfigureAwait(false);
        await body.FlushAsync(ct).ConfigureAwait(false);
    }
}
