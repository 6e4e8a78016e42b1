using System.ClientModel;
using System.ClientModel.Primitives;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using EdgeTune.Adapters;
using EdgeTune.Generation;
using EdgeTune.Models;
using EdgeTune.Serving;
using EdgeTune.Tests.Formats;
using OpenAI;
using OpenAI.Chat;
using ChatCompletion = OpenAI.Chat.ChatCompletion;

namespace EdgeTune.Tests.Serving;

/// <summary>The OpenAI-compatible server on loopback (port 0), over a random tiny model with two LoRA adapters saved
/// and loaded through the PEFT files, as <c>edgetune serve --adapter</c> does.</summary>
public sealed class ServeTests : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private DecoderModel _model = null!;
    private readonly List<LoraAdapter> _adapters = [];
    private LocalChatClient _client = null!;

    public Task InitializeAsync()
    {
        _model = ChatTestKit.Model();
        string a = ChatTestKit.SaveRandomAdapter(_model, _dir.Path, "saved-a", 101);
        string b = ChatTestKit.SaveRandomAdapter(_model, _dir.Path, "saved-b", 202);
        _adapters.Add(AdapterFiles.Load(a, _model, "poet"));
        _adapters.Add(AdapterFiles.Load(b, _model, "coder"));
        _client = ChatTestKit.Client(_model, _adapters);
        return Task.CompletedTask;
    }

    public Task DisposeAsync()
    {
        foreach (var a in _adapters) a.Remove();
        _model.Dispose();
        _dir.Dispose();
        return Task.CompletedTask;
    }

    private Task<OpenAiServer> StartAsync(OpenAiServerOptions? options = null) =>
        OpenAiServer.StartAsync(_client, (options ?? new OpenAiServerOptions()) with { Port = 0 });

    private static OpenAIClientOptions ClientOptions(OpenAiServer server) => new()
    {
        Endpoint = new Uri(server.Url, "/v1"),
        RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
    };

    private static ChatClient Chat(OpenAiServer server, string model, string key = "unused") =>
        new(model, new ApiKeyCredential(key), ClientOptions(server));

    private static readonly OpenAI.Chat.ChatMessage[] Prompt = [new SystemChatMessage("You are terse."), new UserChatMessage("Name a colour.")];

    private static ChatCompletionOptions Greedy(int max = 20) => new() { Temperature = 0, MaxOutputTokenCount = max };

    private static async Task<string> StreamTextAsync(ChatClient chat, ChatCompletionOptions options)
    {
        var sb = new StringBuilder();
        await foreach (var u in chat.CompleteChatStreamingAsync(Prompt, options))
            foreach (var part in u.ContentUpdate) sb.Append(part.Text);
        return sb.ToString();
    }

    [Fact]
    public async Task OfficialClientGetsTheSameGreedyTextWholeAndStreamed()
    {
        await using var server = await StartAsync();
        Assert.Equal(IPAddress.Loopback.ToString(), server.Url.Host);
        var chat = Chat(server, "tiny");
        ChatCompletion whole = await chat.CompleteChatAsync(Prompt, Greedy());
        string expected = (await _client.GetResponseAsync(
            [new(Microsoft.Extensions.AI.ChatRole.System, "You are terse."), new(Microsoft.Extensions.AI.ChatRole.User, "Name a colour.")],
            new Microsoft.Extensions.AI.ChatOptions { Temperature = 0, MaxOutputTokens = 20 })).Text;
        Assert.Equal(expected, whole.Content[0].Text);
        Assert.Equal(ChatFinishReason.Length, whole.FinishReason);
        Assert.Equal(20, whole.Usage.OutputTokenCount);
        Assert.Equal(_client.EncodeChat([new(Microsoft.Extensions.AI.ChatRole.System, "You are terse."), new(Microsoft.Extensions.AI.ChatRole.User, "Name a colour.")]).Length,
            whole.Usage.InputTokenCount);
        Assert.Equal(expected, await StreamTextAsync(chat, Greedy()));

        Assert.True(expected.Length >= 8, expected);
        string stop = expected.Substring(4, 2);
        var stopping = Greedy();
        stopping.StopSequences.Add(stop);
        ChatCompletion stopped = await chat.CompleteChatAsync(Prompt, stopping);
        Assert.Equal(expected[..expected.IndexOf(stop, StringComparison.Ordinal)], stopped.Content.Count == 0 ? "" : stopped.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, stopped.FinishReason);
    }

    [Fact]
    public async Task ModelsListsTheBaseAndEveryAdapterAndAdaptersAnswerDifferently()
    {
        await using var server = await StartAsync();
        var models = await new OpenAI.Models.OpenAIModelClient(new ApiKeyCredential("unused"), ClientOptions(server)).GetModelsAsync();
        Assert.Equal(["tiny", "poet", "coder"], models.Value.Select(m => m.Id));

        string Text(ChatCompletion c) => c.Content.Count == 0 ? "" : c.Content[0].Text;
        string basic = Text((await Chat(server, "tiny").CompleteChatAsync(Prompt, Greedy())).Value);
        string poet = Text((await Chat(server, "poet").CompleteChatAsync(Prompt, Greedy())).Value);
        string coder = Text((await Chat(server, "coder").CompleteChatAsync(Prompt, Greedy())).Value);
        Assert.NotEqual(poet, coder);
        Assert.NotEqual(basic, poet);
        Assert.NotEqual(basic, coder);
        Assert.Equal(poet, await StreamTextAsync(Chat(server, "poet"), Greedy()));
        Assert.Equal(basic, Text((await Chat(server, "tiny").CompleteChatAsync(Prompt, Greedy())).Value));

        var missing = await Assert.ThrowsAsync<ClientResultException>(() => Chat(server, "nope").CompleteChatAsync(Prompt, Greedy()));
        Assert.Equal(404, missing.Status);
    }

    [Fact]
    public async Task ApiKeyIsRequiredWhenConfigured()
    {
        await using var server = await StartAsync(new OpenAiServerOptions { ApiKey = "s3cret" });
        var denied = await Assert.ThrowsAsync<ClientResultException>(() => Chat(server, "tiny", "wrong").CompleteChatAsync(Prompt, Greedy(4)));
        Assert.Equal(401, denied.Status);
        ChatCompletion ok = await Chat(server, "tiny", "s3cret").CompleteChatAsync(Prompt, Greedy(4));
        Assert.Equal(4, ok.Usage.OutputTokenCount);

        using var http = new HttpClient { BaseAddress = server.Url };
        using var none = await http.GetAsync("/v1/models");
        Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
        await AssertErrorAsync(none, "invalid_request_error", "invalid_api_key");
    }

    [Fact]
    public async Task BeyondConcurrencyAndQueueTheServerAnswers429()
    {
        var admitted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await StartAsync(new OpenAiServerOptions
        {
            MaxConcurrency = 1, MaxQueue = 0,
            AfterAdmission = async ct => { admitted.TrySetResult(); await release.Task.WaitAsync(ct); },
        });
        using var http = new HttpClient { BaseAddress = server.Url };
        var first = http.PostAsync("/v1/chat/completions", Json("""{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":3,"temperature":0}"""));
        await admitted.Task.WaitAsync(TimeSpan.FromSeconds(30));
        using (var busy = await http.PostAsync("/v1/chat/completions", Json("""{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":3}""")))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, busy.StatusCode);
            await AssertErrorAsync(busy, "rate_limit_error", "rate_limit_exceeded");
        }
        release.SetResult();
        using var done = await first;
        Assert.Equal(HttpStatusCode.OK, done.StatusCode);
        using var after = await http.PostAsync("/v1/chat/completions", Json("""{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":2}"""));
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
        Assert.Equal(0, server.ActiveRequests);
    }

    [Fact]
    public async Task AQueuedRequestWaitsForTheSlotAndOneMoreIsRefused()
    {
        var admitted = new SemaphoreSlim(0);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = await StartAsync(new OpenAiServerOptions
        {
            MaxConcurrency = 1, MaxQueue = 1,
            AfterAdmission = async ct => { admitted.Release(); await release.Task.WaitAsync(ct); },
        });
        using var http = new HttpClient { BaseAddress = server.Url };
        const string body = """{"messages":[{"role":"user","content":"hi"}],"max_tokens":2,"temperature":0}""";
        var running = http.PostAsync("/v1/chat/completions", Json(body));
        Assert.True(await admitted.WaitAsync(TimeSpan.FromSeconds(30)));
        var queued = http.PostAsync("/v1/chat/completions", Json(body));
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (server.ActiveRequests < 2 && DateTime.UtcNow < deadline) await Task.Delay(10);
        Assert.Equal(2, server.ActiveRequests); // one running, one waiting for the slot (its hook has not run)
        Assert.Equal(0, admitted.CurrentCount);
        using (var refused = await http.PostAsync("/v1/chat/completions", Json(body)))
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.False(queued.IsCompleted);
        release.SetResult();
        using var r1 = await running;
        using var r2 = await queued;
        Assert.Equal(HttpStatusCode.OK, r1.StatusCode);
        Assert.Equal(HttpStatusCode.OK, r2.StatusCode);
        Assert.Contains("\"completion_tokens\":2", await r2.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task RawSseStreamHasDataChunksUsageAndDone()
    {
        await using var server = await StartAsync();
        using var http = new HttpClient { BaseAddress = server.Url };
        const string body = """{"model":"coder","messages":[{"role":"user","content":[{"type":"text","text":"Name a colour."}]}],"max_tokens":12,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}""";
        using var resp = await http.PostAsync("/v1/chat/completions", Json(body));
        Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
        Assert.Equal("text/event-stream", resp.Content.Headers.ContentType!.MediaType);
        string raw = await resp.Content.ReadAsStringAsync();
        Assert.EndsWith("data: [DONE]\n\n", raw);
        var events = raw.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.All(events, e => Assert.StartsWith("data: ", e));
        var chunks = events[..^1].Select(e => JsonDocument.Parse(e["data: ".Length..]).RootElement).ToList();
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        Assert.All(chunks, c => Assert.Equal("coder", c.GetProperty("model").GetString()));
        Assert.Single(chunks.Select(c => c.GetProperty("id").GetString()).Distinct());
        Assert.Equal("assistant", chunks[0].GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());

        var withChoice = chunks.Where(c => c.GetProperty("choices").GetArrayLength() == 1).Select(c => c.GetProperty("choices")[0]).ToList();
        string text = string.Concat(withChoice.Select(c => c.GetProperty("delta").TryGetProperty("content", out var t) ? t.GetString() : ""));
        var finishes = withChoice.Select(c => c.GetProperty("finish_reason")).Where(f => f.ValueKind != JsonValueKind.Null).ToList();
        Assert.Equal("length", Assert.Single(finishes).GetString());
        var usage = chunks[^1];
        Assert.Equal(0, usage.GetProperty("choices").GetArrayLength());
        Assert.Equal(12, usage.GetProperty("usage").GetProperty("completion_tokens").GetInt32());

        using var whole = await http.PostAsync("/v1/chat/completions", Json(body.Replace("\"stream\":true", "\"stream\":false")));
        var doc = JsonDocument.Parse(await whole.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("chat.completion", doc.GetProperty("object").GetString());
        Assert.Equal(text, doc.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task CompletionsContinueRawTextWholeAndStreamed()
    {
        await using var server = await StartAsync();
        using var http = new HttpClient { BaseAddress = server.Url };
        const string body = """{"model":"tiny","prompt":"Once upon a time","max_tokens":10,"temperature":0,"stop":["\u0000never"]}""";
        using var whole = await http.PostAsync("/v1/completions", Json(body));
        Assert.Equal(HttpStatusCode.OK, whole.StatusCode);
        var doc = JsonDocument.Parse(await whole.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("text_completion", doc.GetProperty("object").GetString());
        string text = doc.GetProperty("choices")[0].GetProperty("text").GetString()!;
        Assert.Equal("length", doc.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(17, doc.GetProperty("usage").GetProperty("prompt_tokens").GetInt32()); // BOS + 16 bytes
        var expected = await _client.GetCompletionAsync("Once upon a time", new Microsoft.Extensions.AI.ChatOptions { Temperature = 0, MaxOutputTokens = 10 });
        Assert.Equal(expected.Text, text);

        using var streamed = await http.PostAsync("/v1/completions", Json(body.Replace("\"temperature\":0", "\"temperature\":0,\"stream\":true")));
        string raw = await streamed.Content.ReadAsStringAsync();
        var events = raw.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("data: [DONE]", events[^1]);
        string joined = string.Concat(events[..^1].Select(e => JsonDocument.Parse(e["data: ".Length..]).RootElement.GetProperty("choices")[0].GetProperty("text").GetString()));
        Assert.Equal(text, joined);
    }

    [Fact]
    public async Task BadRequestsGetOpenAiErrors()
    {
        await using var server = await StartAsync(new OpenAiServerOptions { MaxRequestBodyBytes = 2048 });
        using var http = new HttpClient { BaseAddress = server.Url };

        // Expect: 100-continue, as careful clients send large bodies: the server refuses before the body is sent, so
        // the refusal cannot race a connection reset (a server that closes with unread data in its buffer sends RST).
        using var bigRequest = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = Json($$"""{"model":"tiny","messages":[{"role":"user","content":"{{new string('x', 5000)}}"}]}"""),
        };
        bigRequest.Headers.ExpectContinue = true;
        using var big = await http.SendAsync(bigRequest);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, big.StatusCode);
        await AssertErrorAsync(big, "invalid_request_error", "request_too_large");

        using var unknown = await http.PostAsync("/v1/chat/completions", Json("""{"model":"gpt-9","messages":[{"role":"user","content":"hi"}]}"""));
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        await AssertErrorAsync(unknown, "invalid_request_error", "model_not_found");

        using var broken = await http.PostAsync("/v1/chat/completions", Json("""{"model":"tiny","messages":"""));
        Assert.Equal(HttpStatusCode.BadRequest, broken.StatusCode);
        await AssertErrorAsync(broken, "invalid_request_error", null);

        using var badTemp = await http.PostAsync("/v1/chat/completions", Json("""{"model":"tiny","messages":[{"role":"user","content":"hi"}],"temperature":-2}"""));
        Assert.Equal(HttpStatusCode.BadRequest, badTemp.StatusCode);
        await AssertErrorAsync(badTemp, "invalid_request_error", null);

        using var noMessages = await http.PostAsync("/v1/chat/completions", Json("""{"model":"tiny","messages":[]}"""));
        Assert.Equal(HttpStatusCode.BadRequest, noMessages.StatusCode);
    }

    [SkippableFact]
    public async Task CurlStreamsFromTheServer()
    {
        string? curl = new[] { "/usr/bin/curl", "/bin/curl", "/usr/local/bin/curl" }.FirstOrDefault(File.Exists);
        Skip.If(curl is null, "curl is not installed");
        await using var server = await StartAsync(new OpenAiServerOptions { ApiKey = "k" });
        var psi = new ProcessStartInfo(curl!)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (string arg in new[]
        {
            "-sS", "-N", "--max-time", "60", new Uri(server.Url, "/v1/chat/completions").ToString(),
            "-H", "Content-Type: application/json", "-H", "Authorization: Bearer k",
            "-d", """{"model":"poet","messages":[{"role":"user","content":"Name a colour."}],"max_tokens":8,"temperature":0,"stream":true}""",
        }) psi.ArgumentList.Add(arg);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(90));
        Assert.True(p.ExitCode == 0, await stderr);
        string raw = await stdout;
        Assert.StartsWith("data: {", raw);
        Assert.EndsWith("data: [DONE]\n\n", raw);
        Assert.Contains("\"finish_reason\":\"length\"", raw);
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, new MediaTypeHeaderValue("application/json"));

    private static async Task AssertErrorAsync(HttpResponseMessage response, string type, string? code)
    {
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        Assert.Equal(type, error.GetProperty("type").GetString());
        Assert.Equal(code, error.GetProperty("code").GetString());
    }
}
