using System.Text;
using EdgeTune.Generation;
using EdgeTune.Tests.Serving;
using EdgeTune.Text;
using Microsoft.Extensions.AI;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace EdgeTune.Tests.Generation;

public class ChatClientTests
{
    private static readonly AiChatMessage[] Conversation =
    [
        new(ChatRole.System, "You are terse."),
        new(ChatRole.User, "Name a colour."),
    ];

    private static ChatOptions Greedy(int max = 24, string? model = null) => new() { Temperature = 0, MaxOutputTokens = max, ModelId = model };

    private static async Task<(string Text, ChatResponseUpdate Last)> StreamAsync(IChatClient client, ChatOptions options, CancellationToken ct = default)
    {
        var sb = new StringBuilder();
        ChatResponseUpdate? last = null;
        await foreach (var u in client.GetStreamingResponseAsync(Conversation, options, ct))
        {
            sb.Append(u.Text);
            last = u;
        }
        return (sb.ToString(), last!);
    }

    [Fact]
    public async Task StreamingTextEqualsTheWholeResponseWhenGreedy()
    {
        using var model = ChatTestKit.Model();
        using var client = ChatTestKit.Client(model);
        var whole = await client.GetResponseAsync(Conversation, Greedy());
        var (streamed, last) = await StreamAsync(client, Greedy());
        Assert.False(string.IsNullOrEmpty(whole.Text));
        Assert.Equal(whole.Text, streamed);
        Assert.Equal(ChatRole.Assistant, whole.Messages.Single().Role);
        Assert.Equal(whole.FinishReason, last.FinishReason);
        Assert.Equal("tiny", whole.ModelId);
        // a second greedy call repeats the first exactly (nothing leaks between calls)
        Assert.Equal(whole.Text, (await client.GetResponseAsync(Conversation, Greedy())).Text);
    }

    [Fact]
    public async Task UsageCountsThePromptTokensAndEveryGeneratedToken()
    {
        using var model = ChatTestKit.Model();
        using var client = ChatTestKit.Client(model);
        var r = await client.GetResponseAsync(Conversation, Greedy(max: 9));
        // ChatML's markers are plain bytes to the byte tokenizer: the prompt is exactly the rendered text's UTF-8 bytes
        string rendered = new ChatTemplate(ChatTemplates.ChatML).Render(
            Conversation.Select(m => new EdgeTune.Text.ChatMessage(m.Role.Value, m.Text)), addGenerationPrompt: true);
        Assert.StartsWith("<|im_start|>system\nYou are terse.<|im_end|>\n", rendered);
        Assert.Equal(Encoding.UTF8.GetByteCount(rendered), r.Usage!.InputTokenCount);
        Assert.Equal(ChatFinishReason.Length, r.FinishReason);
        Assert.Equal(9, r.Usage.OutputTokenCount);
        Assert.Equal(r.Usage.InputTokenCount + 9, r.Usage.TotalTokenCount);
        Assert.Equal(client.EncodeChat(Conversation).Length, r.Usage.InputTokenCount);
    }

    [Fact]
    public async Task StopSequenceEndsTheTextBeforeItAndFinishesWithStop()
    {
        using var model = ChatTestKit.Model();
        using var client = ChatTestKit.Client(model);
        string full = (await client.GetResponseAsync(Conversation, Greedy(max: 40))).Text;
        Assert.True(full.Length >= 8, $"the random model should say something: '{full}'");
        string stop = full.Substring(5, 2);
        string expected = full[..full.IndexOf(stop, StringComparison.Ordinal)];

        var options = Greedy(max: 40);
        options.StopSequences = [stop];
        var whole = await client.GetResponseAsync(Conversation, options);
        Assert.Equal(expected, whole.Text);
        Assert.Equal(ChatFinishReason.Stop, whole.FinishReason);
        Assert.True(whole.Usage!.OutputTokenCount < 40);
        var (streamed, last) = await StreamAsync(client, options);
        Assert.Equal(expected, streamed);
        Assert.Equal(ChatFinishReason.Stop, last.FinishReason);
    }

    [Fact]
    public async Task CancellingBetweenTokensThrows()
    {
        using var model = ChatTestKit.Model();
        using var client = ChatTestKit.Client(model);
        using var cts = new CancellationTokenSource();
        int seen = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var u in client.GetStreamingResponseAsync(Conversation, Greedy(max: 200), cts.Token))
            {
                seen++;
                cts.Cancel();
            }
        });
        Assert.Equal(1, seen);
        using var already = new CancellationTokenSource();
        already.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.GetResponseAsync(Conversation, Greedy(), already.Token));
    }

    [Fact]
    public async Task ModelIdSelectsAnAdapterAndTheBaseStaysTheBase()
    {
        using var model = ChatTestKit.Model();
        using var client0 = ChatTestKit.Client(model);
        string baseText = (await client0.GetResponseAsync(Conversation, Greedy())).Text;
        using var a = ChatTestKit.RandomAdapter(model, "a", 101);
        using var b = ChatTestKit.RandomAdapter(model, "b", 202);
        using var client = ChatTestKit.Client(model, [a, b]);
        Assert.Equal(["tiny", "a", "b"], client.ModelIds);

        string textA = (await client.GetResponseAsync(Conversation, Greedy(model: "a"))).Text;
        string textB = (await client.GetResponseAsync(Conversation, Greedy(model: "b"))).Text;
        Assert.Equal(baseText, (await client.GetResponseAsync(Conversation, Greedy(model: "tiny"))).Text);
        Assert.Equal(baseText, (await client.GetResponseAsync(Conversation, Greedy())).Text);
        Assert.NotEqual(baseText, textA);
        Assert.NotEqual(textA, textB);

        // concurrent calls on different adapters interleave on the one model and still get their own answers
        var runs = Enumerable.Range(0, 6).Select(i => client.GetResponseAsync(Conversation, Greedy(model: (i % 3) switch { 0 => "a", 1 => "b", _ => null }))).ToArray();
        var texts = (await Task.WhenAll(runs)).Select(r => r.Text).ToArray();
        for (int i = 0; i < texts.Length; i++) Assert.Equal((i % 3) switch { 0 => textA, 1 => textB, _ => baseText }, texts[i]);

        await Assert.ThrowsAsync<KeyNotFoundException>(() => client.GetResponseAsync(Conversation, Greedy(model: "nope")));
    }

    [Fact]
    public async Task SeededSamplingIsReproducibleAndRawCompletionSkipsTheTemplate()
    {
        using var model = ChatTestKit.Model();
        using var client = ChatTestKit.Client(model);
        var sampled = new ChatOptions { Temperature = 1.0f, TopP = 0.9f, TopK = 40, Seed = 99, MaxOutputTokens = 16 };
        Assert.Equal((await client.GetResponseAsync(Conversation, sampled)).Text, (await client.GetResponseAsync(Conversation, sampled)).Text);

        var raw = await client.GetCompletionAsync("Once upon a time", Greedy(max: 12));
        Assert.Equal(1 + "Once upon a time".Length, raw.Usage!.InputTokenCount); // BOS + bytes, no template
        var sb = new StringBuilder();
        await foreach (var u in client.GetStreamingCompletionAsync("Once upon a time", Greedy(max: 12))) sb.Append(u.Text);
        Assert.Equal(raw.Text, sb.ToString());
        Assert.IsType<ChatClientMetadata>(client.GetService(typeof(ChatClientMetadata)));
    }

    /// <summary>The raw-completion path over a real checkpoint reproduces llama2.c's greedy reference text.</summary>
    [SkippableFact]
    public async Task Stories260KCompletionMatchesRunCGreedyText()
    {
        string modelPath = TestAssets.Require("stories260K/stories260K.bin");
        string tok = TestAssets.Require("stories260K/tok512.bin");
        string expected = File.ReadAllText(TestAssets.Require("stories260K/expected_greedy.txt"));
        using var loaded = EdgeTune.Models.ModelLoader.Load(modelPath, tok);
        using var client = new LocalChatClient(loaded.Model, loaded.RequireTokenizer(), new LocalChatClientOptions(StopIds: loaded.StopIds()));
        // run.c -n 100 counts BOS + the 4 prompt tokens: 96 new tokens; it echoes the prompt and ends with a newline
        var r = await client.GetCompletionAsync("Once upon a time", Greedy(max: 96));
        Assert.Equal(expected, "Once upon a time" + r.Text + "\n");
        Assert.Equal(5, r.Usage!.InputTokenCount);
        Assert.Equal(96, r.Usage.OutputTokenCount);
    }

    [Fact]
    public async Task BadOptionsAreArgumentErrors()
    {
        using var model = ChatTestKit.Model();
        using var client = ChatTestKit.Client(model);
        await Assert.ThrowsAnyAsync<ArgumentException>(() => client.GetResponseAsync(Conversation, new ChatOptions { Temperature = -1 }));
        await Assert.ThrowsAnyAsync<ArgumentException>(() => client.GetResponseAsync(Conversation, new ChatOptions { MaxOutputTokens = 0 }));
        var tooLong = new[] { new AiChatMessage(ChatRole.User, new string('x', 400)) };
        await Assert.ThrowsAnyAsync<ArgumentException>(() => client.GetResponseAsync(tooLong, Greedy()));
    }
}
