using System.Text.Json;
using EdgeTune.Text.Datasets;
using EdgeTune.Training.FineTuning;
using static EdgeTune.Tests.Text.Datasets.DataFileWriters;

namespace EdgeTune.Tests.Text.Datasets;

/// <summary>A couple of training steps of the demo model on each layout and container, through <see cref="FineTuneJob"/>.</summary>
public sealed class DataFormatsTrainingTests : IDisposable
{
    private readonly DatasetTestFiles _files = new();

    public void Dispose() => _files.Dispose();

    private const int Rows = 8;

    private static string Json(object o) => JsonSerializer.Serialize(o);

    private static object Msg(string role, string content) => new Dictionary<string, string> { ["role"] = role, ["content"] = content };

    private string Write(string name) => name switch
    {
        "alpaca.json" => _files.WriteText(name, Json(Enumerable.Range(0, Rows).Select(i => new { instruction = $"Add one to {i}.", input = "", output = $"{i + 1}" }))),
        "sharegpt.jsonl" => _files.Write(name, Enumerable.Range(0, Rows).Select(i => Json(new
        {
            conversations = new[] { new { from = "human", value = $"Double {i}?" }, new { from = "gpt", value = $"{2 * i}" } },
        })).ToArray()),
        "prompt-completion.csv" => _files.WriteText(name, Csv(',', [["prompt", "completion"], .. Enumerable.Range(0, Rows).Select(i => new[] { $"{i} squared is", $" {i * i}" })])),
        "conversations.csv" => _files.WriteText(name, Csv(',', [["conversations"], .. Enumerable.Range(0, Rows).Select(i => new[]
        {
            Json(new[] { new { from = "user", value = $"Say {i}" }, new { from = "assistant", value = $"{i}, said" } }),
        })])),
        "messages.parquet" => WriteParquet(_files.PathOf(name), Enumerable.Range(0, Rows).Select(i => new MessagesRow
        {
            Id = i, Messages = [T("user", $"Count to {i % 4 + 1}"), T("assistant", string.Join(" ", Enumerable.Range(1, i % 4 + 1)))],
        })),
        "text.parquet" => WriteParquet(_files.PathOf(name), Enumerable.Range(0, Rows).Select(i => new TextRow { Text = $"Note {i}: the cache is shared." })),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    [Theory]
    [InlineData("alpaca.json", DataFormat.Instruction, DataFileKind.JsonArray)]
    [InlineData("sharegpt.jsonl", DataFormat.ShareGpt, DataFileKind.Jsonl)]
    [InlineData("prompt-completion.csv", DataFormat.PromptCompletion, DataFileKind.Csv)]
    [InlineData("conversations.csv", DataFormat.ShareGpt, DataFileKind.Csv)]
    [InlineData("messages.parquet", DataFormat.Chat, DataFileKind.Parquet)]
    [InlineData("text.parquet", DataFormat.JsonlText, DataFileKind.Parquet)]
    public async Task FineTuneJob_TrainsOnTheRows(string file, DataFormat format, DataFileKind kind)
    {
        string path = Write(file);
        var result = await FineTuneJob.RunAsync(new FineTuneOptions
        {
            Data = path,
            OutputDir = _files.PathOf("run-" + file),
            ValidationFraction = 0,
            Training = new() { Steps = 2, SeqLen = 192, MicroBatch = 2, EvalEvery = 0, CheckpointEvery = 0, WarmupSteps = 1 },
            SampleTokens = 2,
        });
        var data = result.Data;
        Assert.Equal((format, kind, Rows, Rows, 0), (data.Format, data.FileKind, data.RowsRead, data.RowsUsed, data.RowsRejected));
        Assert.NotNull(data.Columns);
        if (format == DataFormat.JsonlText) Assert.Equal(data.TokensTotal - Rows, data.TrainedTokens); // all but each BOS
        else Assert.InRange(data.TrainedTokens, 1, data.TokensTotal / 2); // the prompts carry no loss
        Assert.Equal(2, result.Training.LastStep);
        Assert.All(result.Training.Losses, l => Assert.True(double.IsFinite(l) && l > 0, $"loss {l}"));
    }
}
